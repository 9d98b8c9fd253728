"""Training frames: a Feast feature service compiled to one point-in-time query.

The feature service, its views, TTLs, sources and on-demand transformations come from the
Feast registry. The join runs on an adapter chosen from ``offline_store.type`` in
feature_store.yaml (:func:`offline_engine`):

- ``duckdb`` / ``file`` (local Parquet): :mod:`featureops.pit`, DuckDB ASOF joins, several
  times faster than Feast's own offline store, with our semantics;
- ``spark``: :mod:`featureops.store.offline_spark`, the same semantics as Spark SQL on the
  session of ``offline_store.spark_conf`` (frames equal to DuckDB's, row for row);
- any other store: Feast's own ``get_historical_features`` (:mod:`featureops.store.offline_feast`),
  "as known at" through Feast's ``filter_by_created_timestamp``.

On-demand feature views are applied with Feast's own code, so training and serving share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import pyarrow as pa

from featureops.conventions import EVENT_TIMESTAMP, offline_store_kind, resolve_source_path
from featureops.pit import FeatureViewSpec, point_in_time_join

if TYPE_CHECKING:
    from feast import FeatureStore, OnDemandFeatureView


class FrameError(ValueError):
    """The request for a training frame cannot be served (bad input or unknown service)."""


@dataclass
class RetrievalPlan:
    """A feature service resolved against the registry: what to join and what to compute."""

    service: str
    views: list[FeatureViewSpec]
    odfvs: list[OnDemandFeatureView] = field(default_factory=list)
    output_features: list[str] = field(default_factory=list)
    source_files: list[Path] = field(default_factory=list)
    key_types: dict[str, str] = field(default_factory=dict)

    @property
    def join_keys(self) -> list[str]:
        """The service's join keys, in the order its views first name them."""
        return list(self.key_types)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary of the plan for lineage manifests."""
        return {
            "service": self.service,
            "views": [
                {
                    "name": v.name,
                    "source": Path(str(v.source)).name,
                    "ttl_seconds": int(v.ttl_seconds),
                    "features": list(v.features),
                }
                for v in self.views
            ],
            "on_demand": [o.name for o in self.odfvs],
            "output_features": self.output_features,
        }


def open_store(repo_path: str | Path) -> FeatureStore:
    """Open the Feast repository (imports Feast: ~5 s the first time)."""
    repo_path = Path(repo_path)
    config_file = repo_path / "feature_store.yaml"
    if not config_file.exists():
        raise FrameError(f"no feature_store.yaml in {repo_path.resolve()}")
    registry = _registry_path(config_file)
    if registry is not None and not registry.exists():
        raise FrameError(
            f"no Feast registry at {registry.resolve()}: run `dvc repro` (or `make run`) first"
        )
    from featureops.store.registry import StoreConfigError, feature_store

    try:
        return feature_store(repo_path)
    except StoreConfigError as exc:
        raise FrameError(str(exc)) from None


def _registry_path(config_file: Path) -> Path | None:
    """The file registry named by a feature_store.yaml (None for other registry kinds)."""
    import yaml

    config = yaml.safe_load(config_file.read_text()) or {}
    registry = config.get("registry")
    path = registry.get("path") if isinstance(registry, dict) else registry
    if not isinstance(path, str) or "://" in path:
        return None
    return path_ if (path_ := Path(path)).is_absolute() else config_file.parent / path_


Engine = Literal["duckdb", "spark", "feast"]
ENGINES: dict[str, Engine] = {"duckdb": "duckdb", "file": "duckdb", "spark": "spark"}


def offline_engine(store: FeatureStore) -> Engine:
    """Which adapter builds frames for this store: ``duckdb``, ``spark`` or ``feast`` (stock).

    Chosen from ``offline_store.type`` (Feast's full class name of the Spark store counts as
    ``spark``); any store without a fast path here uses Feast's own retrieval.
    """
    kind = offline_store_kind(str(getattr(store.config.offline_store, "type", "file")))
    return ENGINES.get(kind, "feast")


def _service(store: FeatureStore, name: str):
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException:
        known = sorted(s.name for s in store.list_feature_services())
        raise FrameError(f"unknown feature service {name!r}; registered: {known}") from None


def _odfv_or_none(store: FeatureStore, name: str) -> OnDemandFeatureView | None:
    return next((o for o in store.list_on_demand_feature_views() if o.name == name), None)


def compile_plan(store: FeatureStore, service_name: str) -> RetrievalPlan:
    """Resolve a feature service into point-in-time view specs and on-demand views."""
    service = _service(store, service_name)
    needed: dict[str, list[str]] = {}
    odfvs: list[OnDemandFeatureView] = []
    outputs: list[str] = []

    def need(view: str, features: list[str]) -> None:
        have = needed.setdefault(view, [])
        have.extend(f for f in features if f not in have)

    for proj in service.feature_view_projections:
        feature_names = [f.name for f in proj.features]
        outputs.extend(feature_names)
        odfv = _odfv_or_none(store, proj.name)
        if odfv is None:
            need(proj.name, feature_names)
            continue
        odfvs.append(odfv)
        for src_name, src_proj in odfv.source_feature_view_projections.items():
            need(src_name, [f.name for f in src_proj.features])
    specs, files = [], []
    key_types: dict[str, str] = {}
    for view_name, features in needed.items():
        view = store.get_feature_view(view_name)
        for column in view.entity_columns:
            key_types.setdefault(column.name, str(column.dtype))
        source = view.batch_source
        if source is None:
            raise FrameError(f"feature view {view_name!r} has no batch source")
        location = getattr(source, "path", None)
        if location and "://" not in location:
            path = resolve_source_path(store.repo_path, location)
            files.append(path)
            location = str(path)
        specs.append(
            FeatureViewSpec(
                name=view_name,
                source=location or source.name,  # no path: only Feast's own retrieval reads it
                join_keys=[c.name for c in view.entity_columns],
                timestamp_column=source.timestamp_field,
                created_column=source.created_timestamp_column or None,
                features=features,
                ttl=view.ttl if view.ttl else timedelta(0),
            )
        )
    return RetrievalPlan(service_name, specs, odfvs, outputs, files, key_types)


_INTEGER_TYPES = ("Int32", "Int64")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for readable messages)."""
    return value.item() if hasattr(value, "item") else value


def coerce_entity_keys(entity_df: pd.DataFrame, key_types: dict[str, str]) -> pd.DataFrame:
    """Check each join-key column against its Feast type; integral floats become integers.

    Raises FrameError naming the column when a value does not fit (text in an integer key,
    7.5 as an integer, numbers in a string key, nulls).
    """
    out = entity_df.copy()
    for key, dtype in key_types.items():
        if key not in out.columns:
            continue
        col = out[key]
        if col.isna().any():
            raise FrameError(f"entity column {key!r} has null values")
        if dtype in _INTEGER_TYPES:
            if pd.api.types.is_integer_dtype(col) and not pd.api.types.is_bool_dtype(col):
                out[key] = col.astype("int64")
                continue
            numbers = pd.to_numeric(col, errors="coerce")
            if numbers.isna().any() or (numbers % 1 != 0).any():
                bad = _plain(col[numbers.isna() | (numbers % 1 != 0)].iloc[0])
                raise FrameError(f"entity column {key!r} is {dtype}, got {bad!r}")
            out[key] = numbers.astype("int64")
        elif dtype == "String":
            if not all(isinstance(v, str) for v in col):
                bad = _plain(next(v for v in col if not isinstance(v, str)))
                raise FrameError(f"entity column {key!r} is String, got {bad!r}")
            out[key] = col.astype(object)
    return out


def check_entity_frame(entity_df: pd.DataFrame, join_keys: list[str]) -> pd.DataFrame:
    """Validate an entity frame: keys and a tz-aware ``event_timestamp``, at least one row."""
    if entity_df is None or len(entity_df) == 0:
        raise FrameError("the entity frame is empty: nothing to retrieve")
    missing = [c for c in [*join_keys, EVENT_TIMESTAMP] if c not in entity_df.columns]
    if missing:
        raise FrameError(
            f"entity frame lacks column(s) {missing}; it needs {join_keys} and "
            f"{EVENT_TIMESTAMP!r} (timezone-aware)"
        )
    ts = entity_df[EVENT_TIMESTAMP]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        try:
            ts = pd.to_datetime(ts, utc=False, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise FrameError(f"{EVENT_TIMESTAMP!r} is not parseable as timestamps: {exc}") from None
    if getattr(ts.dt, "tz", None) is None:
        raise FrameError(
            f"{EVENT_TIMESTAMP!r} is timezone-naive; give UTC times (e.g. '2026-01-05T12:00:00Z')"
        )
    out = entity_df.copy()
    out[EVENT_TIMESTAMP] = ts.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return out


def apply_on_demand(table: pa.Table, odfvs: list[OnDemandFeatureView]) -> pa.Table:
    """Run each on-demand view's transformation (Feast's code) and append its features."""
    for odfv in odfvs:
        transformed = odfv.transform_arrow(table, full_feature_names=False)
        for f in odfv.features:
            if f.name not in table.column_names:
                table = table.append_column(f.name, transformed[f.name])
    return table


def build_frame(
    store: FeatureStore,
    service_name: str,
    entity_df: pd.DataFrame,
    *,
    as_known_at: bool = True,
    plan: RetrievalPlan | None = None,
    engine: Engine | None = None,
) -> pd.DataFrame:
    """The point-in-time-correct frame: entity columns plus exactly the service's features.

    As known at each entity time by default (a feature row counts only once its ``created``
    has passed: what serving could have read then); ``as_known_at=False`` gives the rows as
    recorded (Feast's own semantics, leaky for late data). ``plan`` overrides the compiled
    plan (used to read older data versions when reproducing). ``engine`` overrides the
    adapter chosen from the store's configuration (:func:`offline_engine`).
    """
    plan = plan or compile_plan(store, service_name)
    entities = coerce_entity_keys(check_entity_frame(entity_df, plan.join_keys), plan.key_types)
    engine = engine or offline_engine(store)
    if engine == "feast":
        from featureops.store.offline_feast import FeastPathError, historical_features

        try:
            joined = historical_features(
                store, service_name, entities, plan.output_features, as_known_at=as_known_at
            )
        except FeastPathError as exc:
            raise FrameError(str(exc)) from None
    else:
        if engine == "spark":
            from featureops.store import offline_spark

            joined = offline_spark.point_in_time_join(
                offline_spark.store_session(store),
                entities,
                plan.views,
                as_known_at=as_known_at,
                output="arrow",
            )
        else:
            joined = point_in_time_join(
                entities, plan.views, as_known_at=as_known_at, output="arrow"
            )
        joined = apply_on_demand(joined, plan.odfvs)
    keep = list(entities.columns) + [c for c in plan.output_features if c not in entities.columns]
    return joined.select(keep).to_pandas()
