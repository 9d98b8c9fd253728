"""Incremental materialization of Feast feature views into the online store.

Feast's own ``materialize-incremental`` records its progress in the registry, which is the
output of the ``feast apply`` DVC stage; writing it from a second stage would make DVC see
the registry change on every run. We keep the progress in the online store's SQLite file
instead (table ``featureops_materializations``): per view, the end of the last materialized
window, a fingerprint of the view's definition and a digest of the source rows up to that
end. A changed definition, or source rows restated inside the already-materialized range
(a rebuilt Parquet), re-materializes that view from scratch; otherwise only rows after the
previous end are read. Rows are converted and written with Feast's own code, one transaction per
view, so a crash leaves the previous state readable and the next run redoes the window.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from featureops.definitions import view_fingerprint

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

STATE_TABLE = "featureops_materializations"


@dataclass
class ViewMaterialization:
    """What one run wrote for one feature view."""

    view: str
    start: datetime | None
    end: datetime
    rows_scanned: int
    entities_written: int
    full_refresh: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
            "rows_in_window": self.rows_scanned,
            "entities_written": self.entities_written,
            "full_refresh": self.full_refresh,
            "seconds": round(self.seconds, 3),
        }


def _online_db_path(store: FeatureStore) -> Path:
    path = Path(store.config.online_store.path)
    return path if path.is_absolute() else Path(store.repo_path) / path


def _read_state(db: Path) -> dict[str, tuple[str, datetime, str]]:
    with sqlite3.connect(db) as con:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} "
            "(view TEXT PRIMARY KEY, fingerprint TEXT, end_ts TEXT, digest TEXT)"
        )
        rows = con.execute(
            f"SELECT view, fingerprint, end_ts, digest FROM {STATE_TABLE}"
        ).fetchall()
    return {v: (fp, datetime.fromisoformat(end), digest) for v, fp, end, digest in rows}


def _write_state(db: Path, view: str, fingerprint: str, end: datetime, digest: str) -> None:
    with sqlite3.connect(db) as con:
        con.execute(
            f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?) ON CONFLICT(view) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, end_ts = excluded.end_ts, digest = excluded.digest",
            (view, fingerprint, end.isoformat(), digest),
        )


def rows_digest(path: Path, view: FeatureView, end: datetime) -> str:
    """Order-independent digest of the source rows with event time <= ``end``."""
    ts = view.batch_source.timestamp_field
    con = duckdb.connect()
    try:
        return con.sql(
            f'SELECT coalesce(sum(hash(t)), 0)::VARCHAR FROM (SELECT * FROM read_parquet($p) WHERE "{ts}" <= $end) t',
            params={"p": str(path), "end": end},
        ).fetchall()[0][0]
    finally:
        con.close()


def source_path(store: FeatureStore, view: FeatureView) -> Path:
    """The Parquet file behind a file-sourced feature view, resolved like Feast does."""
    path = Path(view.batch_source.path)
    return path if path.is_absolute() else Path(store.repo_path) / path


def latest_rows(
    path: Path, view: FeatureView, start: datetime | None, end: datetime
) -> tuple[pa.Table, int]:
    """Latest row per entity with ``start < event_ts <= end`` (ties: larger created wins)."""
    source = view.batch_source
    ts, created = source.timestamp_field, source.created_timestamp_column
    keys = [c.name for c in view.entity_columns]
    columns = [*keys, *(f.name for f in view.features), ts] + ([created] if created else [])
    order = f'"{ts}" DESC' + (f', "{created}" DESC' if created else "")
    where = f'"{ts}" <= $end' + (f' AND "{ts}" > $start' if start else "")
    select = ", ".join(f'"{c}"' for c in columns)
    partition = ", ".join(f'"{k}"' for k in keys)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        bind = {"end": end, **({"start": start} if start else {})}
        scanned = con.execute(
            f"SELECT count(*) FROM read_parquet($path) WHERE {where}", {"path": str(path), **bind}
        ).fetchall()[0][0]
        table = con.sql(
            f"""SELECT {select} FROM read_parquet($path) WHERE {where}
                QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY {order}) = 1
                ORDER BY {partition}""",
            params={"path": str(path), **bind},
        ).to_arrow_table()
    finally:
        con.close()
    return table, int(scanned)


FAST_TYPES = {
    "Float64": "double_val",
    "Float32": "float_val",
    "Int64": "int64_val",
    "Int32": "int32_val",
    "String": "string_val",
    "Bool": "bool_val",
}


def fast_writable(view: FeatureView) -> bool:
    """Whether :func:`write_rows_fast` can write this view (scalar features only)."""
    return all(str(f.dtype) in FAST_TYPES for f in view.features) and len(view.entity_columns) == 1


def write_rows_fast(store: FeatureStore, view: FeatureView, table: pa.Table) -> None:
    """Write latest rows into Feast's SQLite table in one ``executemany``.

    Produces the same rows as Feast's ``online_write_batch`` (same entity-key serialization,
    value protos, text column and timestamps; a test compares them byte for byte) without its
    per-value ``execute`` and per-row conversion overhead.
    """
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import _table_id, adapt_datetime_epoch
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.utils import to_naive_utc

    config = store.config
    key_col = view.entity_columns[0]
    key_field = FAST_TYPES[str(key_col.dtype)]
    version = config.entity_key_serialization_version
    keys = [
        serialize_entity_key(
            EntityKey(join_keys=[key_col.name], entity_values=[Value(**{key_field: k})]),
            entity_key_serialization_version=version,
        )
        for k in table.column(key_col.name).to_pylist()
    ]
    source = view.batch_source
    # Stored as Feast's sqlite adapter would store them, computed once per entity.
    event_ts = [
        adapt_datetime_epoch(to_naive_utc(t))
        for t in table.column(source.timestamp_field).to_pylist()
    ]
    created = source.created_timestamp_column
    created_ts = (
        [
            adapt_datetime_epoch(to_naive_utc(t)) if t else None
            for t in table.column(created).to_pylist()
        ]
        if created
        else [None] * table.num_rows
    )
    rows = []
    for feature in view.features:
        field = FAST_TYPES[str(feature.dtype)]
        feature_name = feature.name
        for key, ev, cr, v in zip(
            keys, event_ts, created_ts, table.column(feature_name).to_pylist(), strict=True
        ):
            if v is None:
                rows.append((key, feature_name, b"", None, ev, cr))
                continue
            proto = Value(**{field: v})
            raw = getattr(proto, field)
            text = raw if field == "string_val" else str(raw)
            rows.append((key, feature_name, proto.SerializeToString(), text, ev, cr))
    rows.sort(key=lambda r: (r[0], r[1]))  # primary-key order: B-tree appends, not scattered
    name = _table_id(config.project, view, config.registry.enable_online_feature_view_versioning)
    conn = store._get_provider().online_store._get_conn(config)
    with conn:
        conn.executemany(
            f'INSERT INTO "{name}" (entity_key, feature_name, value, value_text, event_ts, created_ts) '
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, "
            "event_ts = excluded.event_ts, created_ts = excluded.created_ts",
            rows,
        )


def data_end(store: FeatureStore, views: list[FeatureView]) -> datetime:
    """The latest event timestamp across the views' sources: the default materialization end."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        ends = [
            con.execute(
                f'SELECT max("{v.batch_source.timestamp_field}") FROM read_parquet($p)',
                {"p": str(source_path(store, v))},
            ).fetchall()[0][0]
            for v in views
        ]
    finally:
        con.close()
    ends = [e for e in ends if e is not None]
    if not ends:
        raise ValueError("no feature rows to materialize: every online view's source is empty")
    return max(ends)


def materialize_incremental(
    store: FeatureStore,
    end: datetime | None = None,
    views: list[str] | None = None,
    fast: bool = True,
) -> list[ViewMaterialization]:
    """Write, per online view, the latest row per entity seen since the previous run.

    ``fast`` writes scalar views with :func:`write_rows_fast`; otherwise (and for other
    views) Feast's own conversion and ``online_write_batch`` are used.
    """
    from feast.utils import _convert_arrow_to_proto

    online_views = [v for v in store.list_feature_views() if v.online]
    if views is not None:
        online_views = [v for v in online_views if v.name in views]
    end = end or data_end(store, online_views)
    db = _online_db_path(store)
    db.parent.mkdir(parents=True, exist_ok=True)
    provider = store._get_provider()
    # Recreate missing tables (e.g. a deleted online_store.db with an unchanged registry).
    provider.update_infra(
        project=store.project,
        tables_to_delete=[],
        tables_to_keep=online_views,
        entities_to_delete=[],
        entities_to_keep=store.list_entities(),
        partial=True,
    )
    state = _read_state(db)
    results = []
    for view in online_views:
        started = time.perf_counter()
        fingerprint = view_fingerprint(view)
        path = source_path(store, view)
        previous = state.get(view.name)
        full = (
            previous is None
            or previous[0] != fingerprint
            or rows_digest(path, view, previous[1]) != previous[2]  # restated history
        )
        start = None if full else previous[1]
        if start is not None and start >= end:
            results.append(ViewMaterialization(view.name, start, end, 0, 0, False, 0.0))
            continue
        table, scanned = latest_rows(path, view, start, end)
        if table.num_rows and fast and fast_writable(view):
            write_rows_fast(store, view, table)
        elif table.num_rows:
            join_keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
            rows = _convert_arrow_to_proto(table, view, join_keys)
            provider.online_write_batch(store.config, view, rows, progress=None)
        _write_state(db, view.name, fingerprint, end, rows_digest(path, view, end))
        results.append(
            ViewMaterialization(
                view.name,
                start,
                end,
                scanned,
                table.num_rows,
                full,
                time.perf_counter() - started,
            )
        )
    return results
