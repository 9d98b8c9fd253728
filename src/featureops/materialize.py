"""Incremental materialization of Feast feature views into the online store.

Feast's own ``materialize-incremental`` records its progress in the registry, which is the
output of the ``feast apply`` DVC stage; writing it from a second stage would make DVC see
the registry change on every run. We keep the progress in the online store's SQLite file
instead (table ``featureops_materializations``): per view, the end of the last materialized
window, a fingerprint of the view's definition, a digest of the source rows up to that end,
and what the view's online table held after the run (rows and distinct entity keys).

Each run, per view:

- the bookkeeping is **verified** against the online table: a table that is missing or does
  not hold the recorded rows and entities (a deleted or replaced store file, tables dropped
  by a ``feast apply`` elsewhere, a crash between writes) is re-materialized from scratch;
- a changed definition, or source rows restated inside the already-materialized range (a
  rebuilt Parquet: the digest differs), is re-materialized from scratch;
- otherwise only rows after the previous end are read and upserted.

A from-scratch ("full") refresh replaces the table's contents in one transaction: entities
and features the source no longer has are gone, and a reader (the prediction service) sees
the old or the new contents, never a mix or an empty table. Rows, bookkeeping and counts
of a view are committed together, so a killed run leaves every view either as before or
complete, and the next run redoes what is missing.

The store is switched to SQLite's write-ahead log (``journal_mode=WAL``, persistent): readers
never wait for the writer, and a writer killed mid-transaction leaves nothing a reader has
to roll back (in the default rollback-journal mode a large killed transaction leaves a "hot
journal" that read-only connections cannot open: ``attempt to write a readonly database``).
The log is checkpointed into the database file at the end of each run, so the file DVC
hashes holds everything.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from featureops.definitions import view_fingerprint

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

STATE_TABLE = "featureops_materializations"
STATE_COLUMNS = {
    "view": "TEXT PRIMARY KEY",
    "fingerprint": "TEXT",
    "end_ts": "TEXT",
    "digest": "TEXT",
    "table_name": "TEXT",
    "rows": "INTEGER",
    "entities": "INTEGER",
}
# The columns every Feast SQLite online table has (one row per entity key and feature).
FEAST_TABLE_COLUMNS = {"entity_key", "feature_name", "value", "event_ts", "created_ts"}
BUSY_TIMEOUT_S = 60.0


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
    reason: str = ""  # why a full refresh ("" for an incremental run)
    online_entities: int | None = None  # distinct entity keys in the online table after

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
            "rows_in_window": self.rows_scanned,
            "entities_written": self.entities_written,
            "full_refresh": self.full_refresh,
            "reason": self.reason,
            "online_entities": self.online_entities,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ViewState:
    """The bookkeeping of one view: what the last run materialized and left online."""

    fingerprint: str
    end: datetime
    digest: str
    table: str | None
    rows: int | None
    entities: int | None


def _online_db_path(store: FeatureStore) -> Path:
    path = Path(store.config.online_store.path)
    return path if path.is_absolute() else Path(store.repo_path) / path


def _connection(store: FeatureStore) -> sqlite3.Connection:
    """Feast's own connection to the online store (the one ``online_write_batch`` uses)."""
    con = store._get_provider().online_store._get_conn(store.config)
    con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # readers hold locks
    return con


def _ensure_state_table(con: sqlite3.Connection) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in STATE_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ({columns})")
    have = {row[1] for row in con.execute(f"PRAGMA table_info({STATE_TABLE})")}
    for name, kind in STATE_COLUMNS.items():
        if name not in have:  # written by an earlier version: counts unknown -> full refresh
            con.execute(f"ALTER TABLE {STATE_TABLE} ADD COLUMN {name} {kind}")
    con.commit()


def _read_state(con: sqlite3.Connection) -> dict[str, ViewState]:
    _ensure_state_table(con)
    rows = con.execute(
        f"SELECT view, fingerprint, end_ts, digest, table_name, rows, entities FROM {STATE_TABLE}"
    ).fetchall()
    return {
        view: ViewState(fp, datetime.fromisoformat(end), digest, table, n_rows, n_entities)
        for view, fp, end, digest, table, n_rows, n_entities in rows
    }


def _write_state(con: sqlite3.Connection, view: str, state: ViewState) -> None:
    """Upsert a view's bookkeeping (inside the caller's transaction)."""
    con.execute(
        f"INSERT INTO {STATE_TABLE} (view, fingerprint, end_ts, digest, table_name, rows, "
        "entities) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(view) DO UPDATE SET "
        "fingerprint = excluded.fingerprint, end_ts = excluded.end_ts, "
        "digest = excluded.digest, table_name = excluded.table_name, rows = excluded.rows, "
        "entities = excluded.entities",
        (
            view,
            state.fingerprint,
            state.end.isoformat(),
            state.digest,
            state.table,
            state.rows,
            state.entities,
        ),
    )


def table_counts(con: sqlite3.Connection, table: str) -> tuple[int, int] | None:
    """(rows, distinct entity keys) of an online table; None if it does not exist."""
    exists = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchall()
    if not exists:
        return None
    rows, entities = con.execute(
        f'SELECT count(*), count(DISTINCT entity_key) FROM "{table}"'
    ).fetchall()[0]
    return int(rows), int(entities)


def online_table(store: FeatureStore, view: FeatureView) -> str:
    """The SQLite table Feast keeps a view's online rows in."""
    from feast.infra.online_stores.sqlite import _table_id

    config = store.config
    return _table_id(config.project, view, config.registry.enable_online_feature_view_versioning)


def view_columns(view: FeatureView) -> list[str]:
    """The source columns a view materializes: keys, features, event and created time."""
    source = view.batch_source
    keys = [c.name for c in view.entity_columns]
    created = source.created_timestamp_column
    return [*keys, *(f.name for f in view.features), source.timestamp_field] + (
        [created] if created else []
    )


# rows_digest: a fixed, documented function of the values (see its docstring).
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_SECOND = _U64(0xD6E8FEB86659FD93)
_NULL_WORD = _U64(0x6E756C6C6E756C6C)  # "nullnull"
_CANONICAL_NAN = np.array([np.nan], dtype=np.float64).view(np.uint64)[0]
DIGEST_VERSION = "v2"
DIGEST_BATCH_ROWS = 262_144


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer on uint64 (arithmetic modulo 2**64)."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _text_words(values: list) -> np.ndarray:
    """The first 8 bytes (little-endian) of the MD5 of each value's UTF-8 text."""
    return np.array(
        [int.from_bytes(hashlib.md5(str(v).encode()).digest()[:8], "little") for v in values],
        dtype=np.uint64,
    )


def value_words(column: pa.Array) -> np.ndarray:
    """One canonical 64-bit word per value (nulls: :data:`_NULL_WORD`).

    Integers and booleans as signed 64-bit integers, timestamps as epoch microseconds,
    floats as the bits of the float64 value (every NaN the same), strings (and any other
    type, through its text) as the first 8 bytes of the MD5 of the UTF-8 text.
    """
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_timestamp(kind):
        ints = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
        words = ints.fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        ints = column.cast(pa.int64())
        words = ints.fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif pa.types.is_floating(kind):
        floats = column.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        words = floats.view(np.uint64).copy()
        words[np.isnan(floats)] = _CANONICAL_NAN
    else:
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            column = pa.array([None if v is None else str(v) for v in column.to_pylist()])
        encoded = column.dictionary_encode()
        uniques = _text_words(encoded.dictionary.to_pylist())
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        words = uniques[indices] if len(uniques) else np.zeros(len(column), dtype=np.uint64)
    words = np.array(words, dtype=np.uint64)
    if column.null_count:
        words[column.is_null().to_numpy(zero_copy_only=False)] = _NULL_WORD
    return words


def row_words(batch: pa.RecordBatch, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row: the words of its values, chained with splitmix64."""
    h = np.full(batch.num_rows, _SECOND, dtype=np.uint64)
    for i, name in enumerate(columns):
        w = value_words(batch.column(batch.schema.get_field_index(name)))
        h = _mix64(h ^ _mix64(w + _U64(i + 1) * _GOLDEN))
    return h


def rows_digest(path: Path, view: FeatureView, end: datetime) -> str:
    """Order-independent digest of the view's source rows with event time <= ``end``.

    Every value becomes a canonical 64-bit word (:func:`value_words`); a row's words, in
    the view's column order (:func:`view_columns`), are chained with the splitmix64 mixer
    into one row hash (:func:`row_words`); the digest is the row count with two sums modulo
    2**64 over the rows, of the row hashes and of their remix:
    ``v2:<rows>:<sum hex><sum of remix hex>``. It depends on the values only: not on a
    library's hash function, the row order or the file layout (a test recomputes it in
    plain Python). Rows are read in batches (bounded memory).
    """
    ts = view.batch_source.timestamp_field
    columns = view_columns(view)
    select = ", ".join(f'"{c}"' for c in columns)
    count, first, second = 0, _U64(0), _U64(0)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        reader = con.sql(
            f'SELECT {select} FROM read_parquet($p) WHERE "{ts}" <= $end',
            params={"p": str(path), "end": end},
        ).to_arrow_reader(DIGEST_BATCH_ROWS)
        with np.errstate(over="ignore"):
            for batch in reader:
                h = row_words(batch, columns)
                count += batch.num_rows
                first = first + h.sum(dtype=np.uint64)
                second = second + _mix64(h ^ _SECOND).sum(dtype=np.uint64)
    finally:
        con.close()
    return f"{DIGEST_VERSION}:{count}:{int(first):016x}{int(second):016x}"


def source_path(store: FeatureStore, view: FeatureView) -> Path:
    """The Parquet file behind a file-sourced feature view, resolved like Feast does."""
    path = Path(view.batch_source.path)
    return path if path.is_absolute() else Path(store.repo_path) / path


def latest_rows(
    path: Path, view: FeatureView, start: datetime | None, end: datetime
) -> tuple[pa.Table, int]:
    """Latest row per entity with ``start < event_ts <= end``.

    Ties on the event time go to the larger ``created``, then to the larger feature values
    (in declaration order, nulls last): the same rows always give the same result.
    """
    source = view.batch_source
    ts, created = source.timestamp_field, source.created_timestamp_column
    keys = [c.name for c in view.entity_columns]
    columns = view_columns(view)
    order = ", ".join(
        [f'"{ts}" DESC']
        + ([f'"{created}" DESC NULLS LAST'] if created else [])
        + [f'"{f.name}" DESC NULLS LAST' for f in view.features]
    )
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


def _fast_rows(store: FeatureStore, view: FeatureView, table: pa.Table) -> list[tuple]:
    """The rows Feast's ``online_write_batch`` would write, in primary-key order."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.sqlite import adapt_datetime_epoch
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
    return rows


def _insert_fast(con: sqlite3.Connection, name: str, rows: list[tuple]) -> None:
    con.executemany(
        f'INSERT INTO "{name}" (entity_key, feature_name, value, value_text, event_ts, created_ts) '
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
        "value = excluded.value, value_text = excluded.value_text, "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts",
        rows,
    )


def write_rows_fast(store: FeatureStore, view: FeatureView, table: pa.Table) -> None:
    """Write latest rows into Feast's SQLite table in one ``executemany`` (one transaction).

    Produces the same rows as Feast's ``online_write_batch`` (same entity-key serialization,
    value protos, text column and timestamps; a test compares them byte for byte) without its
    per-value ``execute`` and per-row conversion overhead.
    """
    con = _connection(store)
    with con:
        _insert_fast(con, online_table(store, view), _fast_rows(store, view, table))


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


def _drop_orphans(
    con: sqlite3.Connection, store: FeatureStore, known: set[str], state: dict[str, ViewState]
) -> list[str]:
    """Drop Feast tables and bookkeeping of views no longer in the registry."""
    project = store.config.project
    dropped = []
    names = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?",
            (len(project) + 1, f"{project}_"),
        ).fetchall()
    ]
    for name in names:
        columns = {row[1] for row in con.execute(f'PRAGMA table_info("{name}")')}
        if name in known or name == STATE_TABLE or not columns >= FEAST_TABLE_COLUMNS:
            continue
        with con:
            con.execute(f'DROP TABLE "{name}"')
        dropped.append(name)
    registered = {v.name for v in store.list_feature_views()}
    with con:
        for view in state:
            if view not in registered:
                con.execute(f"DELETE FROM {STATE_TABLE} WHERE view = ?", (view,))
    return dropped


def materialize_incremental(
    store: FeatureStore,
    end: datetime | None = None,
    views: list[str] | None = None,
    fast: bool = True,
) -> list[ViewMaterialization]:
    """Write, per online view, the latest row per entity seen since the previous run.

    ``fast`` writes scalar views with the direct SQLite writer; otherwise (and for other
    views) Feast's own conversion and ``online_write_batch`` are used.
    """
    from feast.utils import _convert_arrow_to_proto

    all_views = store.list_feature_views()
    online_views = [v for v in all_views if v.online]
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
    con = _connection(store)
    con.execute("PRAGMA journal_mode = WAL")
    state = _read_state(con)
    if views is None:
        _drop_orphans(con, store, {online_table(store, v) for v in all_views}, state)
    results = []
    for view in online_views:
        started = time.perf_counter()
        fingerprint = view_fingerprint(view)
        path = source_path(store, view)
        name = online_table(store, view)
        previous = state.get(view.name)
        counts = table_counts(con, name)
        if previous is None:
            reason = "first run"
        elif previous.fingerprint != fingerprint:
            reason = "definition changed"
        elif previous.rows is None or counts != (previous.rows, previous.entities):
            reason = (
                f"online table holds {counts} (rows, entities), bookkeeping recorded "
                f"{(previous.rows, previous.entities)}"
            )
        elif not (previous.digest or "").startswith(f"{DIGEST_VERSION}:"):
            reason = "bookkeeping written by an older version"
        elif rows_digest(path, view, previous.end) != previous.digest:
            reason = "source rows restated up to the previous end"
        else:
            reason = ""
        full = bool(reason)
        start = None if full else previous.end
        if start is not None and start >= end:
            results.append(
                ViewMaterialization(view.name, start, end, 0, 0, False, 0.0, "", previous.entities)
            )
            continue
        table, scanned = latest_rows(path, view, start, end)
        digest = rows_digest(path, view, end)
        if fast and fast_writable(view):
            rows = _fast_rows(store, view, table)
            with con:  # rows, removals and bookkeeping: one transaction
                if full:
                    con.execute(f'DELETE FROM "{name}"')
                _insert_fast(con, name, rows)
                after = table_counts(con, name) or (0, 0)
                _write_state(con, view.name, ViewState(fingerprint, end, digest, name, *after))
        else:
            if full:
                con.execute(f'DELETE FROM "{name}"')  # committed with Feast's writes below
            if table.num_rows:
                join_keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
                protos = _convert_arrow_to_proto(table, view, join_keys)
                provider.online_write_batch(store.config, view, protos, progress=None)
            with con:
                after = table_counts(con, name) or (0, 0)
                _write_state(con, view.name, ViewState(fingerprint, end, digest, name, *after))
        results.append(
            ViewMaterialization(
                view.name,
                start,
                end,
                scanned,
                table.num_rows,
                full,
                time.perf_counter() - started,
                reason,
                after[1],
            )
        )
    checkpoint(con)
    return results


def checkpoint(con: sqlite3.Connection, attempts: int = 20) -> None:
    """Copy the write-ahead log into the database file and truncate it (readers permitting)."""
    for _ in range(attempts):
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
        if not busy:
            return
        time.sleep(0.1)
