"""The materialize stage's batch read on Spark: when ``batch_engine`` is Feast's Spark engine.

With ``batch_engine: {type: spark.engine, spark_conf: ...}`` in feature_store.yaml, the
``materialize`` stage computes each view's latest row per entity in Spark SQL over the same
Parquet, in a session built from that ``spark_conf``; the rows are then written by the
online-store adapter with the usual bookkeeping. The result is the one
:func:`featureops.materialize.latest_rows` gives on DuckDB: the same window
(``start < event_ts <= end``), the same tie-breaks (larger ``created``, then larger feature
values, nulls last), the same Arrow schema as the source, sorted by the keys.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featureops.store.spark_session import spark_session

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

SPARK_ENGINES = ("spark.engine",)


def batch_engine_type(store: FeatureStore) -> str:
    """``batch_engine.type`` of the store's configuration (``local``, Feast's default)."""
    config: Any = store.config.batch_engine_config
    if isinstance(config, dict):
        return str(config.get("type", "local"))
    return str(config or "local")


def uses_spark(store: FeatureStore) -> bool:
    return batch_engine_type(store) in SPARK_ENGINES


def latest_rows_spark(
    store: FeatureStore, path: Path, view: FeatureView, start: datetime | None, end: datetime
) -> tuple[pa.Table, int]:
    """Latest row per entity with ``start < event_ts <= end``, computed by Spark."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    config: Any = store.config.batch_engine_config
    spark = spark_session(config.get("spark_conf") if isinstance(config, dict) else None)
    source = view.batch_source
    if source is None:
        raise ValueError(f"feature view {view.name!r} has no batch source to materialize")
    ts, created = source.timestamp_field, source.created_timestamp_column
    keys = [c.name for c in view.entity_columns]
    features = [f.name for f in view.features]
    columns = [*keys, *features, ts] + ([created] if created else [])

    rows = spark.read.parquet(str(path))
    window = F.col(ts) <= F.lit(end)
    if start is not None:
        window = window & (F.col(ts) > F.lit(start))
    rows = rows.where(window).select(*columns)
    scanned = rows.count()
    order = [F.col(ts).desc()]
    order += [F.col(created).desc_nulls_last()] if created else []
    order += [F.col(name).desc_nulls_last() for name in features]
    rank = "__featureops_rank"
    latest = (
        rows.withColumn(rank, F.row_number().over(Window.partitionBy(*keys).orderBy(*order)))
        .where(F.col(rank) == 1)
        .drop(rank)
        .orderBy(*keys)
    )
    table = latest.toArrow()
    schema = pq.read_schema(path)
    return table.select(columns).cast(pa.schema([schema.field(c) for c in columns])), scanned
