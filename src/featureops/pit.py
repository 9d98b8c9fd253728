"""Point-in-time joins on DuckDB: the retrieval path behind training frames (no Feast needed).

Semantics, for each entity row (keys, ts) and each view with TTL t:
- candidate feature rows have equal keys and ``ts - t <= feature_ts <= ts`` (both ends
  inclusive; t = 0 or None means unlimited); a null entity key matches nothing;
- the latest ``feature_ts`` wins; on a tie the larger ``created`` wins (a null ``created``
  loses to any value); if still tied, the row stored last wins (last file of the source
  list, then the last row in that file; for an in-memory source, the last row);
- exactly one output row per entity row, in the entity frame's order, duplicates kept;
  nulls where nothing matches; a null feature value on the winning row stays null (Feast);
- ``as_known_at=True`` also requires ``created <= ts`` (rows with a null ``created`` count
  as always known): rows backfilled after the entity time are invisible, as they were then.

How: every view is reduced to an index into its source. One DuckDB query reads only the
key, timestamp and created columns (``read_parquet``) and ``ASOF LEFT JOIN``s the entity
rows to them on a composite order key (feature_ts, created, row position), which resolves
the tie-break inside the ASOF match without a separate dedupe pass; the TTL then nulls
indices that are too old. All views are chained in that one query. The feature values are
gathered afterwards with Arrow ``take`` from the same files. ``as_known_at`` needs two
inequalities, so those views use a range join ranked per entity row (slower; opt-in).

Timestamps: entity timestamps must be timezone-aware (converted to UTC); naive source
timestamps are read as UTC. Every timestamp column of the output is ``timestamp[us, UTC]``.
An empty entity frame gives an empty result with the full output schema.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featureops.io import TIMESTAMP_TYPE, arrow_timestamps_to_utc_us

EVENT_TIMESTAMP = "event_timestamp"
_P = "__featureops_"  # prefix of internal column and table names
_MAX_U64 = 2**64 - 1
_MAX_I64 = 2**63 - 1

PathLike: TypeAlias = str | Path
FeatureSource: TypeAlias = (
    PathLike | Sequence[PathLike] | duckdb.DuckDBPyRelation | pa.Table | pd.DataFrame
)
EntitySource: TypeAlias = pd.DataFrame | pa.Table | PathLike


@dataclass(frozen=True)
class FeatureViewSpec:
    """One feature view to join: a source and what to take from it.

    ``source``: a Parquet path (file, directory or glob), a list of paths, a DuckDB relation,
    an Arrow table or a pandas frame. ``key_map`` maps entity-frame key names to source
    column names where they differ. ``ttl``: timedelta or seconds; 0/None is unlimited.
    Output names: ``output_names[feature]`` if given, else ``prefix + feature``.
    """

    name: str
    source: FeatureSource
    join_keys: Sequence[str]
    timestamp_column: str
    features: Sequence[str]
    created_column: str | None = None
    ttl: timedelta | float | int | None = None
    key_map: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""
    output_names: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ttl = self.ttl
        if ttl is not None and not isinstance(ttl, timedelta):
            ttl = timedelta(seconds=float(ttl))
        if ttl is not None and ttl < timedelta(0):
            raise ValueError(f"view {self.name!r}: ttl must be >= 0, got {ttl}")
        object.__setattr__(self, "ttl", ttl)
        object.__setattr__(self, "join_keys", list(self.join_keys))
        object.__setattr__(self, "features", list(self.features))
        if not self.join_keys:
            raise ValueError(f"view {self.name!r}: needs at least one join key")
        unknown = set(self.output_names) - set(self.features)
        if unknown:
            raise ValueError(f"view {self.name!r}: output_names for unknown features {unknown}")

    def source_key(self, entity_key: str) -> str:
        """The source column joined to the entity-frame column ``entity_key``."""
        return self.key_map.get(entity_key, entity_key)

    def output_name(self, feature: str) -> str:
        """The output column name of ``feature``."""
        return self.output_names.get(feature, self.prefix + feature)

    @property
    def ttl_micros(self) -> int:
        """TTL in microseconds; 0 means unlimited."""
        ttl = self.ttl
        if ttl is None:
            return 0
        assert isinstance(ttl, timedelta)  # __post_init__ normalized it
        return ttl // timedelta(microseconds=1)

    @property
    def ttl_seconds(self) -> float:
        """TTL in seconds; 0 means unlimited."""
        return self.ttl_micros / 1_000_000


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- entities


def _utc_series(ts: pd.Series, column: str) -> pd.Series:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(ts):
        raise ValueError(
            f"entity column {column!r} is timezone-naive; use timezone-aware (UTC) timestamps"
        )
    bad = [v for v in ts.dropna() if not (isinstance(v, datetime) and v.utcoffset() is not None)]
    if bad:
        raise ValueError(
            f"entity column {column!r} must hold timezone-aware datetimes convertible to UTC "
            f"(got {ts.dtype}, e.g. {bad[0]!r})"
        )
    return pd.to_datetime(ts, utc=True)


def prepare_entities(entities: EntitySource, timestamp_column: str = EVENT_TIMESTAMP) -> pa.Table:
    """Entity rows as an Arrow table with ``timestamp_column`` checked and cast to UTC µs.

    Raises ValueError for a missing, naive, non-datetime or null entity timestamp.
    """
    if isinstance(entities, (str, Path)):
        entities = pq.read_table(entities)
    if isinstance(entities, pd.DataFrame):
        if timestamp_column not in entities.columns:
            raise ValueError(f"entity frame has no {timestamp_column!r} column")
        frame = entities.copy(deep=False)
        frame[timestamp_column] = _utc_series(frame[timestamp_column], timestamp_column)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    elif isinstance(entities, pa.Table):
        table = entities
    else:
        raise TypeError(
            f"entity frame must be a pandas DataFrame, Arrow table or Parquet path, got {type(entities)}"
        )
    if timestamp_column not in table.column_names:
        raise ValueError(f"entity frame has no {timestamp_column!r} column")
    ts = table.column(timestamp_column)
    if not pa.types.is_timestamp(ts.type):
        raise ValueError(f"entity column {timestamp_column!r} must be timestamps, got {ts.type}")
    if ts.type.tz is None:
        raise ValueError(
            f"entity column {timestamp_column!r} is timezone-naive; use timezone-aware (UTC) timestamps"
        )
    if ts.null_count:
        raise ValueError(f"entity column {timestamp_column!r} has {ts.null_count} null timestamps")
    index = table.column_names.index(timestamp_column)
    return table.set_column(index, timestamp_column, ts.cast(TIMESTAMP_TYPE, safe=False))


# ----------------------------------------------------------------------------- sources


@dataclass
class _Source:
    """A view's source as SQL (``sql`` yields every source column plus ``index_col``)."""

    sql: str
    index_expr: str
    schema: pa.Schema
    paths: list[str] | None = None
    table: pa.Table | None = None

    def take(self, columns: list[str], indices: pa.Array) -> pa.Table:
        """Rows ``indices`` (null -> null row) of the source's ``columns``."""
        if self.table is not None:
            data = self.table.select(columns)
        else:
            assert self.paths is not None
            parts = [pq.read_table(p, columns=columns) for p in self.paths]
            data = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        return data.take(indices)


def expand_paths(source: PathLike | Sequence[PathLike], view: str) -> list[str]:
    """Parquet files of a path source (file, directory, glob or list), in stored order."""
    items = [source] if isinstance(source, (str, Path)) else list(source)
    paths: list[str] = []
    for item in items:
        text = str(item)
        if Path(text).is_dir():
            found = sorted(str(p) for p in Path(text).rglob("*.parquet"))
        elif glob.has_magic(text):
            found = sorted(glob.glob(text, recursive=True))
        else:
            found = [text]
        if not found:
            raise ValueError(f"view {view!r}: no Parquet files at {text!r}")
        paths += found
    if not paths:
        raise ValueError(f"view {view!r}: empty source path list")
    return paths


def _resolve_source(view: FeatureViewSpec, con: duckdb.DuckDBPyConnection, n: int) -> _Source:
    src = view.source
    if isinstance(src, (str, Path)) or (
        isinstance(src, Sequence) and not isinstance(src, (pd.DataFrame, pa.Table))
    ):
        paths = expand_paths(src, view.name)
        schema = pq.read_schema(paths[0])
        if len(paths) == 1:
            index = "file_row_number"
        else:
            offsets = np.cumsum([0] + [pq.ParquetFile(p).metadata.num_rows for p in paths[:-1]])
            index = (
                f"(list_extract(CAST([{', '.join(str(int(o)) for o in offsets)}] AS BIGINT[]), "
                "file_index::BIGINT + 1) + file_row_number)"
            )
        sql = f"read_parquet([{', '.join(_lit(p) for p in paths)}])"
        return _Source(sql, index, schema, paths=paths)
    if isinstance(src, duckdb.DuckDBPyRelation):
        table = src.to_arrow_table()
    elif isinstance(src, pd.DataFrame):
        table = pa.Table.from_pandas(src, preserve_index=False)
    elif isinstance(src, pa.Table):
        table = src
    else:
        raise TypeError(f"view {view.name!r}: unsupported source type {type(src)}")
    name = f"{_P}src{n}"
    index_col = f"{_P}i"
    con.register(name, table.append_column(index_col, pa.array(np.arange(len(table)))))
    return _Source(_q(name), _q(index_col), table.schema, table=table)


def _epoch_us(column: str, arrow_type: pa.DataType) -> str:
    col = _q(column)
    if pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns":
        return f"((epoch_ns({col}) - ((epoch_ns({col}) % 1000) + 1000) % 1000) // 1000)"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return f"epoch_us(CAST({col} AS TIMESTAMPTZ))"
    raise ValueError(f"column {column!r} must be a timestamp, got {arrow_type}")


# ----------------------------------------------------------------------------- checks


def check_views(
    entity_columns: list[str], views: list[FeatureViewSpec], schemas: list[pa.Schema]
) -> None:
    """Raise ValueError for a missing key or column, or an output name that collides."""
    seen = {c: "the entity frame" for c in entity_columns}
    for view, schema in zip(views, schemas, strict=True):
        for key in view.join_keys:
            if key not in entity_columns:
                raise ValueError(f"view {view.name!r}: entity frame lacks join key {key!r}")
        needed = [view.source_key(k) for k in view.join_keys]
        needed += [view.timestamp_column, *view.features]
        needed += [view.created_column] if view.created_column else []
        missing = [c for c in needed if c not in schema.names]
        if missing:
            raise ValueError(f"view {view.name!r}: source lacks column(s) {missing}")
        for feature in view.features:
            out = view.output_name(feature)
            if out.startswith(_P):
                raise ValueError(f"output column {out!r}: names starting {_P!r} are reserved")
            if out in seen:
                raise ValueError(
                    f"output column {out!r} (feature {feature!r} of view {view.name!r}) collides "
                    f"with a column of {seen[out]}; use prefix= or output_names= to rename"
                )
            seen[out] = f"view {view.name!r}"


# ----------------------------------------------------------------------------- SQL


def _view_cte(view: FeatureViewSpec, source: _Source, i: int) -> str:
    """Keys, feature ts (µs), created (µs), order key and row index of view ``i``'s source."""
    types = {f.name: f.type for f in source.schema}
    cols = [f"{_q(view.source_key(k))} AS {_q(f'{_P}k{j}')}" for j, k in enumerate(view.join_keys)]
    ts = _epoch_us(view.timestamp_column, types[view.timestamp_column])
    created = (
        _epoch_us(view.created_column, types[view.created_column])
        if view.created_column
        else "NULL"
    )
    # (ts, created, position) packed as {k: ts * 2^64 + created + 2^63 (0 if null), r: pos}:
    # lexicographic order == the tie-break order; a 128-bit key sorts faster than a 3-field struct
    cols += [
        f"{ts} AS {_q(_P + 'ts')}",
        f"coalesce({created}, {-_MAX_I64 - 1}) AS {_q(_P + 'c')}",
        f"{{'k': {ts}::HUGEINT * {2**64} + coalesce({created}::HUGEINT + {2**63}, 0), "
        f"'r': {source.index_expr}::BIGINT}} AS {_q(_P + 'o')}",
        f"{source.index_expr}::BIGINT AS {_q(_P + 'i')}",
    ]
    return f"f{i} AS (SELECT {', '.join(cols)} FROM {source.sql})"


def _ttl_ok(view: FeatureViewSpec, f: str) -> str:
    if view.ttl_micros <= 0:
        return "TRUE"
    return f"{f}.{_q(_P + 'ts')} >= e.{_q(_P + 'ts')} - {view.ttl_micros}"


def _build_query(views: list[FeatureViewSpec], sources: list[_Source], as_known_at: bool) -> str:
    ts, o, row, idx = (_q(_P + s) for s in ("ts", "o", "row", "i"))
    ctes = [
        f"e AS (SELECT *, {{'k': {ts}::HUGEINT * {2**64} + {_MAX_U64}, 'r': {_MAX_I64}::BIGINT}} "
        f"AS {o} FROM {_q(_P + 'entities')})"
    ]
    ctes += [_view_cte(v, s, i) for i, (v, s) in enumerate(zip(views, sources, strict=True))]
    select = [f"e.{row}"]
    joins = []
    for i, view in enumerate(views):
        keys = [f"e.{_q(k)} = {{f}}.{_q(f'{_P}k{j}')}" for j, k in enumerate(view.join_keys)]
        if as_known_at and view.created_column:
            conds = [k.format(f="f") for k in keys]
            conds += [f"f.{ts} <= e.{ts}", f"f.{_q(_P + 'c')} <= e.{ts}"]
            if view.ttl_micros > 0:
                conds.append(_ttl_ok(view, "f"))
            ctes.append(
                f"r{i} AS (SELECT e.{row}, f.{idx} FROM e JOIN f{i} f ON {' AND '.join(conds)} "
                f"QUALIFY row_number() OVER (PARTITION BY e.{row} ORDER BY f.{o} DESC) = 1)"
            )
            joins.append(f"LEFT JOIN r{i} ON e.{row} = r{i}.{row}")
            select.append(f"r{i}.{idx} AS {_q(f'{_P}i{i}')}")
        else:
            conds = [k.format(f=f"f{i}") for k in keys]
            joins.append(f"ASOF LEFT JOIN f{i} ON {' AND '.join(conds)} AND e.{o} >= f{i}.{o}")
            select.append(
                f"CASE WHEN {_ttl_ok(view, f'f{i}')} THEN f{i}.{idx} END AS {_q(f'{_P}i{i}')}"
            )
    return f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM e {' '.join(joins)}"


def point_in_time_sql(views: Sequence[FeatureViewSpec], *, as_known_at: bool = False) -> str:
    """The index query :func:`point_in_time_join` runs (Parquet sources only; for inspection)."""
    con = duckdb.connect()
    try:
        views = list(views)
        sources = [_resolve_source(v, con, i) for i, v in enumerate(views)]
        return _build_query(views, sources, as_known_at)
    finally:
        con.close()


# ----------------------------------------------------------------------------- join


def point_in_time_join(
    entity_df: EntitySource,
    views: Sequence[FeatureViewSpec],
    *,
    as_known_at: bool = False,
    timestamp_column: str = EVENT_TIMESTAMP,
    output: Literal["pandas", "arrow"] = "pandas",
    threads: int | None = None,
) -> pd.DataFrame | pa.Table:
    """Join every view's features onto the entity rows, point-in-time correct.

    ``entity_df``: a pandas DataFrame, Arrow table or Parquet path with the join keys and a
    timezone-aware ``timestamp_column``. Returns the entity columns (values unchanged,
    timestamps as UTC µs) followed by each view's output columns, one row per entity row in
    the original order (pandas output has a fresh RangeIndex).
    """
    if output not in ("pandas", "arrow"):
        raise ValueError(f"output must be 'pandas' or 'arrow', got {output!r}")
    views = list(views)
    entities = prepare_entities(entity_df, timestamp_column)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        sources = [_resolve_source(v, con, i) for i, v in enumerate(views)]
        check_views(entities.column_names, views, [s.schema for s in sources])
        keys = list(dict.fromkeys(k for v in views for k in v.join_keys))
        slim = pa.table(
            {
                **{k: entities.column(k) for k in keys},
                _P + "ts": pc.cast(entities.column(timestamp_column), pa.int64()),
                _P + "row": pa.array(np.arange(entities.num_rows, dtype=np.int64)),
            }
        )
        con.register(_P + "entities", slim)
        if views:
            result = con.sql(_build_query(views, sources, as_known_at)).to_arrow_table()
        else:
            result = pa.table({_P + "row": pa.array([], pa.int64())})
    finally:
        con.close()
    rows = result.column(_P + "row").to_numpy()
    table = entities
    for i, (view, source) in enumerate(zip(views, sources, strict=True)):
        found = result.column(f"{_P}i{i}").fill_null(-1).to_numpy()
        ordered = np.empty(entities.num_rows, dtype=np.int64)
        ordered[rows] = found
        indices = pa.array(ordered, mask=ordered < 0)
        taken = source.take(list(view.features), indices)
        for feature in view.features:
            table = table.append_column(view.output_name(feature), taken.column(feature))
    table = arrow_timestamps_to_utc_us(table)
    return table if output == "arrow" else table.to_pandas()
