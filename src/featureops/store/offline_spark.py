"""Point-in-time joins on Spark: training frames when ``offline_store: {type: spark}``.

The same semantics as :mod:`featureops.pit` (DuckDB), generated as Spark SQL from the same
:class:`~featureops.pit.FeatureViewSpec` list, so the two give equal frames row for row:

- candidate rows have equal keys and ``ts - ttl <= feature_ts <= ts`` (both ends inclusive;
  TTL 0/None is unlimited); a null key matches nothing;
- the latest ``feature_ts`` wins, then the larger ``created`` (null loses), then the row stored
  last (last file of the source list, then the last row in it: ``_metadata.row_index``);
- one output row per entity row, in the entity frame's order, duplicates kept;
- ``as_known_at=True`` also requires ``created <= ts`` (a null ``created`` is always known).

How: per view, "as recorded" is an as-of join without a range join: the entity rows and the
feature rows of a view are unioned, partitioned by the join keys and ordered by (ts, feature
rows before entity rows, created, file, row); ``last_value(..., ignore nulls)`` then carries
the winning feature row to each entity row (cost O(n log n), independent of how many rows an
entity has in the window). "As known at" needs two inequalities, so those views use an equi
join on the keys with the window as a filter and ``max_by`` the tie-break order per entity row.

Sources are read by Spark itself from the same Parquet files (nanosecond timestamps, which
Spark cannot read as timestamps, are read as integers for the duration of the join and cast
back); in-memory sources (Arrow, pandas, DuckDB relations) are sent to Spark with Arrow. The
result is collected with Arrow and its feature columns cast back to the source's Arrow types,
so the frame has the same schema as the DuckDB path's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featureops.io import arrow_timestamps_to_utc_us
from featureops.pit import (
    EVENT_TIMESTAMP,
    EntitySource,
    FeatureViewSpec,
    check_views,
    expand_paths,
    prepare_entities,
)
from featureops.store.spark_session import spark_session

if TYPE_CHECKING:
    from feast import FeatureStore
    from pyspark.sql import SparkSession

_P = "__featureops_"  # prefix of internal column and view names
_MIN_I64 = -(2**63)
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
QUOTED_REGEX = "spark.sql.parser.quotedRegexColumnNames"


def store_session(store: FeatureStore) -> SparkSession:
    """The session for a Feast store whose ``offline_store`` is Spark (its ``spark_conf``)."""
    return spark_session(getattr(store.config.offline_store, "spark_conf", None))


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# ----------------------------------------------------------------------------- sources


@dataclass
class SparkSource:
    """A view's source registered as a Spark temp view, with file (``fi``) and row (``ri``).

    ``schema`` is the source's Arrow schema (values are cast back to it); ``spark_types``
    the Spark SQL type of each column as Spark reads it.
    """

    view_name: str
    schema: pa.Schema
    spark_types: dict[str, str]


def _is_ns(arrow_type: pa.DataType) -> bool:
    return pa.types.is_timestamp(arrow_type) and arrow_type.unit == "ns"


def _in_memory_table(src: Any, view: str) -> pa.Table:
    if isinstance(src, duckdb.DuckDBPyRelation):
        return src.to_arrow_table()
    if isinstance(src, pd.DataFrame):
        return pa.Table.from_pandas(src, preserve_index=False)
    if isinstance(src, pa.Table):
        return src
    raise TypeError(f"view {view!r}: unsupported source type {type(src)}")


def register_source(spark: SparkSession, view: FeatureViewSpec, name: str) -> SparkSource:
    """Register ``view``'s source as Spark temp view ``name`` (Parquet read by Spark)."""
    from pyspark.sql import functions as F

    fi, ri = _P + "fi", _P + "ri"
    src = view.source
    if isinstance(src, (str, Path)) or (
        isinstance(src, Sequence) and not isinstance(src, (pd.DataFrame, pa.Table))
    ):
        paths = expand_paths(src, view.name)
        schema = pq.read_schema(paths[0])
        frames = [
            spark.read.parquet(path).select(
                "*", F.lit(i).cast("bigint").alias(fi), F.col("_metadata.row_index").alias(ri)
            )
            for i, path in enumerate(paths)
        ]
        frame = frames[0]
        for more in frames[1:]:
            frame = frame.unionByName(more)
    else:
        table = _in_memory_table(src, view.name)
        schema = table.schema
        table = arrow_timestamps_to_utc_us(table)  # Spark has no ns timestamps
        table = table.append_column(fi, pa.array(np.zeros(len(table), dtype=np.int64)))
        table = table.append_column(ri, pa.array(np.arange(len(table), dtype=np.int64)))
        frame = spark.createDataFrame(table)
    frame.createOrReplaceTempView(name)
    types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
    return SparkSource(name, schema, types)


def _epoch_us(column: str, arrow_type: pa.DataType, spark_type: str) -> str:
    """Spark SQL for a timestamp column as µs since the epoch (UTC; naive read as UTC)."""
    col = _q(column)
    if _is_ns(arrow_type) and spark_type == "bigint":  # ns read as integers: floor to µs
        return f"(({col} - pmod({col}, 1000)) DIV 1000)"
    if spark_type == "timestamp":
        return f"unix_micros({col})"
    if spark_type in ("timestamp_ntz", "date"):  # naive: read as UTC
        return (
            "timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', "
            f"CAST({col} AS TIMESTAMP_NTZ))"
        )
    raise ValueError(f"column {column!r} must be a timestamp, got {arrow_type} ({spark_type})")


# ----------------------------------------------------------------------------- SQL


def _feature_cte(view: FeatureViewSpec, source: SparkSource, i: int) -> str:
    """Keys, ts (µs), created (µs), file, row and feature values of view ``i``'s source."""
    types = {f.name: f.type for f in source.schema}

    def epoch_us(column: str) -> str:
        return _epoch_us(column, types[column], source.spark_types[column])

    keys = [view.source_key(k) for k in view.join_keys]
    cols = [f"{_q(k)} AS {_q(f'{_P}k{j}')}" for j, k in enumerate(keys)]
    created = epoch_us(view.created_column) if view.created_column else "CAST(NULL AS BIGINT)"
    cols += [
        f"{epoch_us(view.timestamp_column)} AS {_q(_P + 'ts')}",
        f"{created} AS {_q(_P + 'c')}",
        f"{_q(_P + 'fi')}, {_q(_P + 'ri')}",
    ]
    cols += [f"{_q(f)} AS {_q(f'{_P}v{j}')}" for j, f in enumerate(view.features)]
    not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in keys)
    return f"f{i} AS (SELECT {', '.join(cols)} FROM {_q(source.view_name)} WHERE {not_null})"


def _values_struct(view: FeatureViewSpec, alias: str) -> str:
    fields = [f"'v{j}', {alias}{_q(f'{_P}v{j}')}" for j in range(len(view.features))]
    return f"named_struct('ts', {alias}{_q(_P + 'ts')}, {', '.join(fields)})"


def _asof_cte(view: FeatureViewSpec, i: int, value_types: Sequence[str]) -> str:
    """As recorded: union the entity and feature rows, carry the last feature row forward."""
    ts, row, c, fi, ri, s, flag = (_q(_P + n) for n in ("ts", "row", "c", "fi", "ri", "s", "e"))
    keys = [_q(f"{_P}k{j}") for j in range(len(view.join_keys))]
    entity_keys = [f"{_q(k)} AS {key}" for k, key in zip(view.join_keys, keys, strict=True)]
    entity_not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in view.join_keys)
    struct_type = ", ".join(["ts: BIGINT", *(f"v{j}: {t}" for j, t in enumerate(value_types))])
    rows = (
        f"SELECT {', '.join(entity_keys)}, {ts}, 1 AS {flag}, CAST(NULL AS BIGINT) AS {c}, "
        f"CAST(NULL AS BIGINT) AS {fi}, CAST(NULL AS BIGINT) AS {ri}, {row}, "
        f"CAST(NULL AS STRUCT<{struct_type}>) AS {s} FROM e WHERE {entity_not_null} "
        f"UNION ALL SELECT {', '.join(keys)}, {ts}, 0, {c}, {fi}, {ri}, "
        f"CAST(NULL AS BIGINT), {_values_struct(view, '')} FROM f{i}"
    )
    window = (
        f"PARTITION BY {', '.join(keys)} ORDER BY {ts}, {flag}, {c} NULLS FIRST, {fi}, {ri} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    )
    ttl = f" AND {s}.ts >= {ts} - {view.ttl_micros}" if view.ttl_micros > 0 else ""
    return (
        f"r{i} AS (SELECT {row}, CASE WHEN {s} IS NOT NULL{ttl} THEN {s} END AS {s} FROM "
        f"(SELECT {row}, {ts}, {flag}, last_value({s}, true) OVER ({window}) AS {s} "
        f"FROM ({rows})) WHERE {flag} = 1)"
    )


def _known_cte(view: FeatureViewSpec, i: int) -> str:
    """As known at: equi join on the keys, window and ``created <= ts`` as filters, max_by."""
    ts, row, c, fi, ri, s = (_q(_P + n) for n in ("ts", "row", "c", "fi", "ri", "s"))
    conds = [f"e.{_q(k)} = f.{_q(f'{_P}k{j}')}" for j, k in enumerate(view.join_keys)]
    conds += [f"f.{ts} <= e.{ts}", f"(f.{c} IS NULL OR f.{c} <= e.{ts})"]
    if view.ttl_micros > 0:
        conds.append(f"f.{ts} >= e.{ts} - {view.ttl_micros}")
    order = (
        f"named_struct('ts', f.{ts}, 'c', coalesce(f.{c}, {_MIN_I64}L), 'fi', f.{fi}, 'ri', f.{ri})"
    )
    return (
        f"r{i} AS (SELECT e.{row}, max_by({_values_struct(view, 'f.')}, {order}) AS {s} "
        f"FROM e JOIN f{i} f ON {' AND '.join(conds)} GROUP BY e.{row})"
    )


def build_query(
    views: Sequence[FeatureViewSpec],
    sources: Sequence[SparkSource],
    entity_view: str,
    as_known_at: bool,
) -> str:
    """The join as Spark SQL over the registered entity rows and sources (for inspection)."""
    row = _q(_P + "row")
    ctes = [f"e AS (SELECT * FROM {_q(entity_view)})"]
    select = [f"e.{row}"]
    joins = []
    for i, (view, source) in enumerate(zip(views, sources, strict=True)):
        ctes.append(_feature_cte(view, source, i))
        if as_known_at and view.created_column:
            ctes.append(_known_cte(view, i))
        else:
            ctes.append(_asof_cte(view, i, [source.spark_types[f] for f in view.features]))
        joins.append(f"LEFT JOIN r{i} ON e.{row} = r{i}.{row}")
        select += [
            f"r{i}.{_q(_P + 's')}.v{j} AS {_q(f'{_P}o{i}_{j}')}" for j in range(len(view.features))
        ]
    return f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM e {' '.join(joins)}"


# ----------------------------------------------------------------------------- join


@contextmanager
def _temp_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Set runtime SQL confs for the duration of the block, then restore them."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _has_ns_files(view: FeatureViewSpec) -> bool:
    src = view.source
    if isinstance(src, (str, Path)) or (
        isinstance(src, Sequence) and not isinstance(src, (pd.DataFrame, pa.Table))
    ):
        paths = expand_paths(src, view.name)
        return any(_is_ns(f.type) for p in paths for f in pq.read_schema(p))
    return False


def point_in_time_join(
    spark: SparkSession,
    entity_df: EntitySource,
    views: Sequence[FeatureViewSpec],
    *,
    as_known_at: bool = False,
    timestamp_column: str = EVENT_TIMESTAMP,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """Join every view's features onto the entity rows on Spark, point-in-time correct.

    The same contract as :func:`featureops.pit.point_in_time_join`: the entity columns
    (timestamps as UTC µs) followed by each view's output columns, one row per entity row in
    the original order; feature columns keep their source's Arrow types.
    """
    if output not in ("pandas", "arrow"):
        raise ValueError(f"output must be 'pandas' or 'arrow', got {output!r}")
    views = list(views)
    entities = prepare_entities(entity_df, timestamp_column)
    tag = uuid.uuid4().hex[:12]
    names: list[str] = []
    # Feast's Spark store turns on regex column names (backticks would be patterns); ns
    # Parquet timestamps can only be read as integers
    settings = {QUOTED_REGEX: "false"}
    if any(_has_ns_files(v) for v in views):
        settings[NANOS_AS_LONG] = "true"
    try:
        with _temp_conf(spark, settings):
            sources = []
            for i, view in enumerate(views):
                names.append(f"{_P}src{i}_{tag}")
                sources.append(register_source(spark, view, names[-1]))
            check_views(entities.column_names, views, [s.schema for s in sources])
            if views:
                keys = list(dict.fromkeys(k for v in views for k in v.join_keys))
                slim = pa.table(
                    {
                        **{k: entities.column(k) for k in keys},
                        _P + "ts": pc.cast(entities.column(timestamp_column), pa.int64()),
                        _P + "row": pa.array(np.arange(entities.num_rows, dtype=np.int64)),
                    }
                )
                names.append(f"{_P}entities_{tag}")
                spark.createDataFrame(slim).createOrReplaceTempView(names[-1])
                query = build_query(views, sources, names[-1], as_known_at)
                result = spark.sql(query).toArrow()
    finally:
        for name in names:
            spark.catalog.dropTempView(name)
    table = entities
    if views:
        order = pc.sort_indices(result.column(_P + "row"))
        result = result.take(order)
        if result.num_rows != entities.num_rows:  # never: one row per entity row by construction
            raise RuntimeError(
                f"Spark join returned {result.num_rows} rows for {entities.num_rows}"
            )
    for i, (view, source) in enumerate(zip(views, sources, strict=True)):
        types = {f.name: f.type for f in source.schema}
        for j, feature in enumerate(view.features):
            column = result.column(f"{_P}o{i}_{j}").cast(types[feature], safe=False)
            table = table.append_column(view.output_name(feature), column)
    table = arrow_timestamps_to_utc_us(table)
    return table if output == "arrow" else table.to_pandas()
