"""Feast's SQLite online store: the fast paths (bulk writes, direct reads) and bookkeeping.

This is the one module that knows Feast's SQLite layout and calls Feast's private
functions for it: table ``<project>_<view>`` with one row per (serialized entity key,
feature name) holding a serialized ``ValueProto``, its text, and the event and created
times in epoch seconds.

- **Writes**: :func:`fast_rows` builds the rows Feast's ``online_write_batch`` would
  write (a test compares them byte for byte) and :func:`insert_rows` writes them in one
  ``executemany``; views with other feature types go through Feast's own conversion and
  ``online_write_batch`` on the same connection. The bookkeeping of incremental
  materialization lives in the same file (table :data:`STATE_TABLE`), so rows and
  bookkeeping of a view commit in one transaction; the file runs in write-ahead-log mode.
- **Reads**: :class:`SqliteReader` reads the rows of a batch of entity keys with one query
  per view through a read-only connection, decoding doubles without protobuf.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureops.store.online.base import StoredView, ViewState, ensure_tables

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView
    from feast.repo_config import RepoConfig

TYPES = ("sqlite", "feast.infra.online_stores.sqlite.SqliteOnlineStore")

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


def db_path(config: RepoConfig, repo_path: str | Path) -> Path:
    """The SQLite file of the online store (``online_store.path``, relative to the repo)."""
    path = Path(getattr(config.online_store, "path", None) or "")
    return path if path.is_absolute() else Path(repo_path) / path


def online_table(store: FeatureStore, view: FeatureView) -> str:
    """The SQLite table Feast keeps a view's online rows in."""
    from feast.infra.online_stores.sqlite import _table_id

    config = store.config
    return _table_id(config.project, view, config.registry.enable_online_feature_view_versioning)


def connection(store: FeatureStore) -> sqlite3.Connection:
    """Feast's own connection to the online store (the one ``online_write_batch`` uses)."""
    online: Any = store.provider.online_store  # Feast's SqliteOnlineStore
    con: sqlite3.Connection = online._get_conn(store.config)
    con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # readers hold locks
    return con


def close_connection(store: FeatureStore) -> None:
    """Close Feast's cached connection (e.g. before the file is deleted or replaced)."""
    online: Any = store.provider.online_store
    if online._conn is not None:
        online._conn.close()
        online._conn = None


# --------------------------------------------------------------------------- bookkeeping


def ensure_state_table(con: sqlite3.Connection) -> None:
    columns = ", ".join(f"{name} {kind}" for name, kind in STATE_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ({columns})")
    have = {row[1] for row in con.execute(f"PRAGMA table_info({STATE_TABLE})")}
    for name, kind in STATE_COLUMNS.items():
        if name not in have:  # written by an earlier version: counts unknown -> full refresh
            con.execute(f"ALTER TABLE {STATE_TABLE} ADD COLUMN {name} {kind}")
    con.commit()


def read_state(con: sqlite3.Connection) -> dict[str, ViewState]:
    ensure_state_table(con)
    rows = con.execute(
        f"SELECT view, fingerprint, end_ts, digest, table_name, rows, entities FROM {STATE_TABLE}"
    ).fetchall()
    return {
        view: ViewState(fp, datetime.fromisoformat(end), digest, table, n_rows, n_entities)
        for view, fp, end, digest, table, n_rows, n_entities in rows
    }


def write_state(con: sqlite3.Connection, view: str, state: ViewState) -> None:
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


def checkpoint(con: sqlite3.Connection, attempts: int = 20) -> None:
    """Copy the write-ahead log into the database file and truncate it (readers permitting)."""
    for _ in range(attempts):
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()[0]
        if not busy:
            return
        time.sleep(0.1)


# --------------------------------------------------------------------------- bulk writes

FAST_TYPES = {
    "Float64": "double_val",
    "Float32": "float_val",
    "Int64": "int64_val",
    "Int32": "int32_val",
    "String": "string_val",
    "Bool": "bool_val",
}


def fast_writable(view: FeatureView) -> bool:
    """Whether :func:`fast_rows` can build this view's rows (scalar features, one key)."""
    return all(str(f.dtype) in FAST_TYPES for f in view.features) and len(view.entity_columns) == 1


def fast_rows(store: FeatureStore, view: FeatureView, table: pa.Table) -> list[tuple]:
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
    source: Any = view.batch_source
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
    rows: list[tuple] = []
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


def insert_rows(con: sqlite3.Connection, name: str, rows: list[tuple]) -> None:
    """Upsert :func:`fast_rows` into a Feast table (inside the caller's transaction)."""
    con.executemany(
        f'INSERT INTO "{name}" (entity_key, feature_name, value, value_text, event_ts, created_ts) '
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
        "value = excluded.value, value_text = excluded.value_text, "
        "event_ts = excluded.event_ts, created_ts = excluded.created_ts",
        rows,
    )


def write_rows_fast(store: FeatureStore, view: FeatureView, table: pa.Table) -> None:
    """Write latest rows into Feast's SQLite table in one ``executemany`` (one transaction)."""
    con = connection(store)
    with con:
        insert_rows(con, online_table(store, view), fast_rows(store, view, table))


def feast_write(store: FeatureStore, view: FeatureView, table: pa.Table) -> None:
    """Feast's own conversion and ``online_write_batch`` (commits on Feast's connection)."""
    from feast.utils import _convert_arrow_to_proto

    if table.num_rows:
        join_keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
        protos = _convert_arrow_to_proto(table, view, join_keys)
        store.provider.online_write_batch(store.config, view, protos, progress=None)


class SqliteWriter:
    """Materialize into Feast's SQLite store: rows and bookkeeping in one transaction."""

    kind = "sqlite"
    counts_rows = True

    def __init__(self, store: FeatureStore, fast: bool = True) -> None:
        self.store = store
        self.fast = fast
        self._con: sqlite3.Connection | None = None

    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = connection(self.store)
        return self._con

    def begin(
        self, views: list[FeatureView], all_views: list[FeatureView], prune: bool
    ) -> dict[str, ViewState]:
        store = self.store
        db_path(store.config, store.repo_path).parent.mkdir(parents=True, exist_ok=True)
        # Recreate missing tables (e.g. a deleted online_store.db with an unchanged registry).
        ensure_tables(store, views)
        self.con.execute("PRAGMA journal_mode = WAL")
        state = read_state(self.con)
        if prune:
            self.drop_orphans({online_table(store, v) for v in all_views}, state)
        return state

    def drop_orphans(self, known: set[str], state: dict[str, ViewState]) -> list[str]:
        """Drop Feast tables and bookkeeping of views no longer in the registry."""
        con, project = self.con, self.store.config.project
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
        registered = {v.name for v in self.store.list_feature_views()}
        with con:
            for view in state:
                if view not in registered:
                    con.execute(f"DELETE FROM {STATE_TABLE} WHERE view = ?", (view,))
        return dropped

    def verify(self, view: FeatureView, previous: ViewState) -> str:
        counts = table_counts(self.con, online_table(self.store, view))
        if previous.rows is None or counts != (previous.rows, previous.entities):
            return (
                f"online table holds {counts} (rows, entities), bookkeeping recorded "
                f"{(previous.rows, previous.entities)}"
            )
        return ""

    def write(self, view: FeatureView, table: pa.Table, full: bool, state: ViewState) -> ViewState:
        con, name = self.con, online_table(self.store, view)
        if self.fast and fast_writable(view):
            rows = fast_rows(self.store, view, table)
            with con:  # rows, removals and bookkeeping: one transaction
                if full:
                    con.execute(f'DELETE FROM "{name}"')
                _insert(con, name, rows)
                recorded = self._record(view, name, state)
        else:
            if full:
                con.execute(f'DELETE FROM "{name}"')  # committed with Feast's writes below
            feast_write(self.store, view, table)
            with con:
                recorded = self._record(view, name, state)
        return recorded

    def _record(self, view: FeatureView, name: str, state: ViewState) -> ViewState:
        rows, entities = table_counts(self.con, name) or (0, 0)
        recorded = replace(state, table=name, rows=rows, entities=entities)
        write_state(self.con, view.name, recorded)
        return recorded

    def finish(self) -> None:
        checkpoint(self.con)


def _insert(con: sqlite3.Connection, name: str, rows: list[tuple]) -> None:
    # looked up at call time, so a test can pause a run inside the transaction
    insert_rows(con, name, rows)


# --------------------------------------------------------------------------- reads

_DOUBLE_TAG = 0x29  # ValueProto field 5 (double_val), wire type 1 (64-bit)
_unpack_double = struct.Struct("<d").unpack_from


def decode(blob: bytes, feature_type: Any) -> Any:
    """A stored ValueProto as the Python value Feast's ``to_dict`` returns."""
    if len(blob) == 9 and blob[0] == _DOUBLE_TAG:
        return _unpack_double(blob, 1)[0]
    if not blob:
        return None
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(Value.FromString(blob), feature_type)


def epoch_seconds(ts: Any) -> int | None:
    """Feast's SQLite store writes event times as epoch seconds (older files: ISO text)."""
    if ts is None or isinstance(ts, int):
        return ts
    parsed = datetime.fromisoformat(ts.decode() if isinstance(ts, bytes) else str(ts))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


class SqliteReader:
    """Direct reads of Feast's SQLite tables: equal to ``get_online_features``, much cheaper."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def watched_file(self) -> Path | None:
        return self.path

    def connect(self) -> sqlite3.Connection:
        """A read-only connection to the online store (one per process / thread)."""
        from featureops.store.online import OnlineStoreError

        if not self.path.exists():
            raise OnlineStoreError(f"online store not found: {self.path}")
        con = sqlite3.connect(
            f"file:{self.path}?mode=ro",
            uri=True,
            check_same_thread=False,
            cached_statements=512,
            timeout=10.0,
        )
        con.execute("PRAGMA cache_size = -16384")  # 16 MiB of pages (reused until a write)
        return con

    def read_view(
        self,
        handle: sqlite3.Connection,
        view: StoredView,
        first: dict[bytes, int],
        columns: dict[str, list[Any]],
        stamps: dict[bytes, int | None],
    ) -> None:
        column_of = columns.get
        types = view.feature_types
        sql = (
            f'SELECT entity_key, feature_name, value, event_ts FROM "{view.table}" '
            f"WHERE entity_key IN ({','.join('?' * len(first))})"
        )
        args: list[Any] = [*first]
        if view.subset:  # rows of the other features of the table are not even fetched
            sql += f" AND feature_name IN ({','.join('?' * len(view.features))})"
            args.extend(view.features)
        raw: dict[bytes, Any] = {}
        for key_bin, name, blob, ts in handle.execute(sql, args):
            raw[key_bin] = ts
            column = column_of(name)
            if column is None:
                continue
            if len(blob) == 9 and blob[0] == _DOUBLE_TAG:  # a double: skip the proto
                column[first[key_bin]] = _unpack_double(blob, 1)[0]
            else:
                column[first[key_bin]] = decode(blob, types[name])
        for key_bin, ts in raw.items():
            stamps[key_bin] = epoch_seconds(ts)
