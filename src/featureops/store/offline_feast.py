"""The stock Feast path for training frames: any offline store without a fast path here.

``FeatureStore.get_historical_features`` with the feature service (Feast applies the
on-demand views itself). "As known at" is Feast's ``filter_by_created_timestamp`` (public
since 0.67), which puts ``created <= entity time`` inside the join, as our semantics need:
a post-filter on Feast's result would not be sound (it would drop the latest *recorded* row
instead of falling back to the latest *known* one). A store that does not support it raises
:class:`FeastPathError` for ``as_known_at=True``.

Differences from the fast paths (DuckDB, Spark) a user of another store should know: ties on
(feature_ts, created) are broken however that store's SQL breaks them, and a null
``created`` follows that store's rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from featureops.io import arrow_timestamps_to_utc_us

if TYPE_CHECKING:
    from feast import FeatureStore

_ROW = "__featureops_row"


class FeastPathError(ValueError):
    """Feast's own retrieval cannot give the requested frame."""


def historical_features(
    store: FeatureStore,
    service_name: str,
    entities: pd.DataFrame,
    output_features: list[str],
    *,
    as_known_at: bool,
) -> pa.Table:
    """The entity rows (values unchanged, in order) plus the service's features, via Feast."""
    service = store.get_feature_service(service_name)
    request = entities.assign(**{_ROW: range(len(entities))})
    try:
        job = store.get_historical_features(
            entity_df=request, features=service, filter_by_created_timestamp=as_known_at
        )
    except NotImplementedError as exc:
        raise FeastPathError(
            f"offline store {store.config.offline_store.type!r} cannot retrieve 'as known at' "
            f"the entity time ({exc}); use train.as_known_at: false to accept Feast's "
            "as-recorded semantics"
        ) from None
    result = job.to_df().sort_values(_ROW, kind="stable").reset_index(drop=True)
    if len(result) != len(entities):
        raise FeastPathError(
            f"Feast returned {len(result)} rows for {len(entities)} entity rows "
            f"(offline store {store.config.offline_store.type!r})"
        )
    table = pa.Table.from_pandas(entities.reset_index(drop=True), preserve_index=False)
    for name in output_features:
        if name not in table.column_names:
            table = table.append_column(name, pa.array(result[name], from_pandas=True))
    return arrow_timestamps_to_utc_us(table)
