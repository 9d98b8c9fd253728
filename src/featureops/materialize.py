"""Incremental materialization of Feast feature views into the online store.

Feast's own ``materialize-incremental`` records its progress in the registry, which is the
output of the ``feast apply`` DVC stage; writing it from a second stage would make DVC see
the registry change on every run. We keep our own bookkeeping instead: per view, the end of
the last materialized window, a fingerprint of the view's definition, a digest of the
source rows up to that end, and what the store held after the run. Where it lives depends
on the engine (:mod:`featureops.store.online`, chosen from ``online_store.type``):

- **SQLite** (:mod:`featureops.store.online.sqlite`): a table inside the online store file
  (``featureops_materializations``), so rows, removals and bookkeeping of a view commit in
  one transaction; rows are written in bulk. The file runs in write-ahead-log mode (readers
  never wait; a killed writer leaves nothing to roll back) and is checkpointed at the end.
- **any other store**, Redis included (:mod:`featureops.store.online.stock`): Feast's public
  ``write_to_online_store``; the bookkeeping in ``materialize_state.json`` beside the
  registry, replaced atomically after each view.

Each run, per view:

- the bookkeeping is **verified** against the store (SQLite: the table's rows and distinct
  entities equal the recorded counts; other stores: a few recorded entity keys are read
  back): a store that lost rows (a deleted file, a flushed Redis, tables dropped by a
  ``feast apply`` elsewhere, a crash between writes) is re-materialized from scratch;
- a changed definition, or source rows restated inside the already-materialized range (a
  rebuilt Parquet: the digest differs), is re-materialized from scratch;
- otherwise only rows after the previous end are read and upserted.

A from-scratch ("full") refresh replaces the view's rows: entities and features the source
no longer has are gone. On SQLite it is one transaction (a reader sees the old or the new
contents, never a mix or an empty table; a killed run leaves every view as before or
complete); on other stores the view's rows are deleted, then written.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa

from featureops.conventions import resolve_source_path
from featureops.definitions import view_fingerprint
from featureops.progress import track
from featureops.store.batch_spark import latest_rows_spark, uses_spark
from featureops.store.online import ViewState, online_writer
from featureops.store.online.sqlite import (  # noqa: F401  (the SQLite layout, re-exported)
    FAST_TYPES,
    FEAST_TABLE_COLUMNS,
    STATE_COLUMNS,
    STATE_TABLE,
    checkpoint,
    fast_writable,
    online_table,
    table_counts,
    write_rows_fast,
)

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

__all__ = [
    "STATE_TABLE",
    "ViewMaterialization",
    "ViewState",
    "data_end",
    "latest_rows",
    "materialize_incremental",
    "online_table",
    "rows_digest",
    "view_columns",
]


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


def _online_db_path(store: FeatureStore) -> Path:
    """The SQLite online store file (SQLite stores only)."""
    from featureops.store.online.sqlite import db_path

    return db_path(store.config, store.repo_path)


def batch_source(view: FeatureView) -> Any:
    """The view's batch source (a file source: its ``path``, timestamp fields)."""
    if view.batch_source is None:
        raise ValueError(f"feature view {view.name!r} has no batch source to materialize")
    return view.batch_source


def view_columns(view: FeatureView) -> list[str]:
    """The source columns a view materializes: keys, features, event and created time."""
    source = batch_source(view)
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
    ts = batch_source(view).timestamp_field
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
    """The Parquet file behind a file-sourced feature view (relative: to the project folder)."""
    return resolve_source_path(store.repo_path, batch_source(view).path)


def latest_rows(
    path: Path, view: FeatureView, start: datetime | None, end: datetime
) -> tuple[pa.Table, int]:
    """Latest row per entity with ``start < event_ts <= end``.

    Ties on the event time go to the larger ``created``, then to the larger feature values
    (in declaration order, nulls last): the same rows always give the same result.
    """
    source = batch_source(view)
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


def data_end(store: FeatureStore, views: list[FeatureView]) -> datetime:
    """The latest event timestamp across the views' sources: the default materialization end."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        ends = [
            con.execute(
                f'SELECT max("{batch_source(v).timestamp_field}") FROM read_parquet($p)',
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


def entity_count(path: Path, view: FeatureView, end: datetime) -> int:
    """Distinct entity keys with a source row at or before ``end``: what a store holds
    online for the view once ``(-inf, end]`` is materialized."""
    keys = ", ".join(f'"{c.name}"' for c in view.entity_columns)
    ts = batch_source(view).timestamp_field
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return int(
            con.execute(
                f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM read_parquet($p) "
                f'WHERE "{ts}" <= $end)',
                {"p": str(path), "end": end},
            ).fetchall()[0][0]
        )
    finally:
        con.close()


def _refresh_reason(
    path: Path, view: FeatureView, fingerprint: str, previous: ViewState | None, verify: Any
) -> str:
    """Why the view must be re-materialized from scratch ("" if incremental will do)."""
    if previous is None:
        return "first run"
    if previous.fingerprint != fingerprint:
        return "definition changed"
    reason = verify(view, previous)
    if reason:
        return str(reason)
    if not (previous.digest or "").startswith(f"{DIGEST_VERSION}:"):
        return "bookkeeping written by an older version"
    if rows_digest(path, view, previous.end) != previous.digest:
        return "source rows restated up to the previous end"
    return ""


def materialize_incremental(
    store: FeatureStore,
    end: datetime | None = None,
    views: list[str] | None = None,
    fast: bool = True,
) -> list[ViewMaterialization]:
    """Write, per online view, the latest row per entity seen since the previous run.

    The engine's adapter is chosen from the store's configuration
    (:func:`featureops.store.online.online_writer`); ``fast`` (SQLite only) writes scalar
    views with the bulk writer, otherwise Feast's own conversion and writes are used. The
    latest rows are computed by DuckDB, or by Spark when ``batch_engine`` is Feast's Spark
    engine (:mod:`featureops.store.batch_spark`).
    """
    all_views = store.list_feature_views()
    online_views = [v for v in all_views if v.online]
    if views is not None:
        online_views = [v for v in online_views if v.name in views]
    end = end or data_end(store, online_views)
    read_latest = partial(latest_rows_spark, store) if uses_spark(store) else latest_rows
    writer = online_writer(store, fast=fast)
    state = writer.begin(online_views, all_views, prune=views is None)
    results = []
    for view in track(online_views, "materialize", total=len(online_views)):
        started = time.perf_counter()
        fingerprint = view_fingerprint(view)
        path = source_path(store, view)
        previous = state.get(view.name)
        reason = _refresh_reason(path, view, fingerprint, previous, writer.verify)
        full = bool(reason)
        start = None if full or previous is None else previous.end
        if previous is not None and start is not None and start >= end:
            results.append(
                ViewMaterialization(view.name, start, end, 0, 0, False, 0.0, "", previous.entities)
            )
            continue
        table, scanned = read_latest(path, view, start, end)
        digest = rows_digest(path, view, end)
        entities = None if writer.counts_rows else entity_count(path, view, end)
        probe = previous.probe if previous is not None and not full else ()
        new = ViewState(fingerprint, end, digest, None, None, entities, probe)
        recorded = writer.write(view, table, full, new)
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
                recorded.entities,
            )
        )
    writer.finish()
    return results
