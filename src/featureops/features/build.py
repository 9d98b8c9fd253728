"""Build the declared feature tables: validated Parquet -> one Parquet file per table.

Every declaration is validated first (:func:`load_feature_tables`), before any data is read.
Each table then runs its compiled query per batch of whole entities (about
``transform.chunk_rows`` timeline rows each: memory is bounded, results do not depend on
it), appends normalized columns with statistics fit on the declared window, and streams the
rows into one Parquet file replaced atomically. Row groups have a fixed size, so the same
inputs give the same bytes whatever the batch size.

``transform.engine: spark`` runs the same compiled plan on Spark SQL instead
(:mod:`.spark`); the files written are the same.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featureops.config import ConfigError, SourceSpec, source_specs
from featureops.features.binding import first_line, quote
from featureops.features.compiler import compile_fit, compile_table
from featureops.features.spec import (
    CREATED,
    EVENT_TIMESTAMP,
    METHOD_SUFFIX,
    FeatureTableSpec,
    load_feature_tables,
)
from featureops.io import arrow_timestamps_to_utc_us, atomic_path
from featureops.normalize import apply_stats, fit_stats, load_stats, save_stats

if TYPE_CHECKING:
    from featureops.config.schema import TransformModel

DEFAULT_CHUNK_ROWS = 1_000_000
ROW_GROUP_ROWS = 131_072
BATCHES, BATCH_KEYS = "__batches", "__batch_keys"


def null_counts_sql(
    source: str, keys: tuple[str, ...], timestamp: str, quote: Callable[[str], str]
) -> str:
    """SQL counting a source's rows with a null key and with a null timestamp (both engines)."""
    null_keys = " OR ".join(f"{quote(k)} IS NULL" for k in keys)
    return (
        f"SELECT count(*) FILTER (WHERE {null_keys}), "
        f"count(*) FILTER (WHERE {quote(timestamp)} IS NULL) FROM {quote(source)}"
    )


def null_problem(
    source: str, keys: tuple[str, ...], timestamp: str, keys_null: int, ts_null: int
) -> str | None:
    """The message for null keys or timestamps in a source (None: there are none)."""
    if keys_null:
        return (
            f"source {source!r} has {keys_null} rows with a null key {list(keys)} "
            "(validation should have quarantined them)"
        )
    if ts_null:
        return (
            f"source {source!r} has {ts_null} rows with a null {timestamp!r} "
            "(validation should have quarantined them)"
        )
    return None


class FeatureBuildError(ValueError):
    """A data-dependent failure building a feature table (one line naming the table)."""


def write_feature_tables(
    params: dict[str, Any],
    validated_dir: str | Path,
    features_dir: str | Path,
    stats_dir: str | Path,
    *,
    spark: Any = None,
) -> dict[str, Any]:
    """Write ``<features_dir>/<table>.parquet`` for every declared table; return a summary.

    Tables with ``normalize`` also get ``<stats_dir>/<table>.json`` (the statistics are
    applied as re-read from that file: the numbers serving loads). The summary has rows per
    source and, per table, ``rows_in`` (filtered timeline rows), ``rows_out`` (always equal:
    FeatureBuildError otherwise) and the normalization fit rows and window.

    With ``transform.engine: spark`` the tables are computed by Spark (``spark``: a
    SparkSession to use, else one is started from ``transform.spark``).
    """
    settings = transform_settings(params)
    if settings.engine == "spark":
        from featureops.features.spark import write_feature_tables_spark  # pyspark: lazily

        return write_feature_tables_spark(
            params, validated_dir, features_dir, stats_dir, settings.spark, session=spark
        )
    sources = source_specs(params)
    specs = load_feature_tables(params, sources)
    size = chunk_rows(params)
    features_dir, stats_dir = Path(features_dir), Path(stats_dir)
    con = connect(validated_dir, sources, _sources_used(specs.values()))
    try:
        summary: dict[str, Any] = {"sources": _source_rows(con, specs.values()), "tables": {}}
        for spec in specs.values():
            build = _TableBuild(con, spec, sources, size)
            summary["tables"][spec.name] = write_table(
                build, build.batches, Path(features_dir), Path(stats_dir)
            )
    finally:
        con.close()
    return summary


class TableBuild(Protocol):
    """What either engine's build of one table gives :func:`write_table`."""

    spec: FeatureTableSpec

    def fit(self) -> dict[str, Any]: ...

    def empty(self, stats: dict[str, Any] | None) -> pa.Table: ...

    def summary(self, rows: int, stats: dict[str, Any] | None) -> dict[str, Any]: ...


def write_table(
    build: TableBuild,
    batches: Callable[[dict[str, Any] | None], Iterable[pa.Table]],
    features_dir: Path,
    stats_dir: Path,
) -> dict[str, Any]:
    """Fit the table's normalization (if declared), write its Parquet atomically from
    ``batches(stats)`` (the schema even with no rows) and return its summary."""
    spec = build.spec
    stats = None
    if spec.normalize is not None:
        path = stats_dir / f"{spec.name}.json"
        save_stats(build.fit(), path)
        stats = load_stats(path)
    with atomic_path(features_dir / f"{spec.name}.parquet") as tmp:
        sink = ParquetSink(tmp)
        try:
            for table in batches(stats):
                sink.write(table)
            if sink.writer is None:  # no rows: the file still has the schema
                sink.open(build.empty(stats).schema)
        finally:
            sink.close()
    return build.summary(sink.rows, stats)


def build_feature_tables(
    params: dict[str, Any], validated_dir: str | Path, *, spark: Any = None
) -> dict[str, pd.DataFrame]:
    """Every declared table in memory, exactly as :func:`write_feature_tables` writes it."""
    if transform_settings(params).engine == "spark":
        with tempfile.TemporaryDirectory(prefix="featureops-features-") as tmp:
            summary = write_feature_tables(
                params, validated_dir, Path(tmp) / "features", Path(tmp) / "stats", spark=spark
            )
            return {
                name: pq.read_table(Path(tmp) / "features" / f"{name}.parquet").to_pandas()
                for name in summary["tables"]
            }
    sources = source_specs(params)
    specs = load_feature_tables(params, sources)
    size = chunk_rows(params)
    con = connect(validated_dir, sources, _sources_used(specs.values()))
    try:
        out = {}
        for spec in specs.values():
            build = _TableBuild(con, spec, sources, size)
            stats = build.fit() if spec.normalize is not None else None
            tables = list(build.batches(stats))
            table = pa.concat_tables(tables) if tables else build.empty(stats)
            build.summary(table.num_rows, stats)
            out[spec.name] = table.to_pandas()
    finally:
        con.close()
    return out


def transform_settings(params: dict[str, Any]) -> TransformModel:
    """``params.yaml: transform`` typed (engine, chunk_rows, spark); ConfigError naming the key."""
    from pydantic import ValidationError  # pydantic only where a build runs

    from featureops.config.schema import TransformModel

    try:
        return TransformModel.model_validate(params.get("transform") or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in ("transform", *error["loc"]))
        got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
        raise ConfigError(f"params.yaml: {where}: {error['msg']}{got}") from None


def chunk_rows(params: dict[str, Any]) -> int:
    """``transform.chunk_rows``: timeline rows per batch of whole entities (memory only)."""
    value = (params.get("transform") or {}).get("chunk_rows", DEFAULT_CHUNK_ROWS)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError("params.yaml: transform.chunk_rows: expected a positive integer")
    return value


def connect(
    validated_dir: str | Path, sources: dict[str, SourceSpec], names: Iterable[str]
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (UTC) with one view per source over ``<validated_dir>/<name>.parquet``.

    Each view has the declared columns (their declared types, checked) and ``created``.
    Raises FileNotFoundError for a missing file, FeatureBuildError for a wrong schema.
    """
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name in names:
            path = Path(validated_dir) / f"{name}.parquet"
            if not path.exists():
                raise FileNotFoundError(f"validated source {name!r} not found: {path}")
            con.execute(_view_sql(con, name, sources[name], path))
    except BaseException:
        con.close()
        raise
    return con


def _view_sql(con: duckdb.DuckDBPyConnection, name: str, spec: SourceSpec, path: Path) -> str:
    read = "read_parquet('" + str(path).replace("'", "''") + "')"
    found = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {read}").fetchall()}
    declared = {
        c: con.execute(f"SELECT typeof(NULL::{t})").fetchall()[0][0]
        for c, t in spec.columns.items()
    }
    declared.setdefault(CREATED, "TIMESTAMP WITH TIME ZONE")
    for column, kind in declared.items():
        if column not in found:
            raise FeatureBuildError(f"{path}: validated source {name!r} lacks column {column!r}")
        if found[column] != kind:
            raise FeatureBuildError(
                f"{path}: column {column!r} is {found[column]}, declared {kind} in sources.{name}"
            )
    columns = ", ".join(quote(c) for c in declared)
    return f"CREATE VIEW {quote(name)} AS SELECT {columns} FROM {read}"


def _sources_used(specs: Iterable[FeatureTableSpec]) -> list[str]:
    names: dict[str, None] = {}
    for spec in specs:
        names[spec.source] = None
        names.update((a.source, None) for a in spec.as_of)
    return list(names)


def _source_rows(con: duckdb.DuckDBPyConnection, specs: Iterable[FeatureTableSpec]) -> dict:
    return {
        name: int(con.execute(f"SELECT count(*) FROM {quote(name)}").fetchall()[0][0])
        for name in _sources_used(specs)
    }


class _TableBuild:
    """One table's build on an open connection: checks, fit, batches, summary."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        spec: FeatureTableSpec,
        sources: dict[str, SourceSpec],
        chunk_rows: int,
    ) -> None:
        self.con, self.spec, self.sources, self.chunk_rows = con, spec, sources, chunk_rows
        self._check_nulls(spec.source, spec.keys, spec.timestamp)
        for a in spec.as_of:
            self._check_nulls(a.source, a.keys, sources[a.source].timestamp)
        where = f" WHERE ({spec.filter})" if spec.filter else ""
        self.rows_in = self._scalar(f"SELECT count(*) FROM {quote(spec.source)}{where}")

    def fail(self, message: str) -> FeatureBuildError:
        return FeatureBuildError(f"features.{self.spec.name}: {message}")

    def _scalar(self, sql: str) -> Any:
        try:
            return self.con.execute(sql).fetchall()[0][0]
        except duckdb.Error as exc:
            raise self.fail(first_line(exc)) from exc

    def _check_nulls(self, source: str, keys: tuple[str, ...], timestamp: str) -> None:
        try:
            counts = self.con.execute(null_counts_sql(source, keys, timestamp, quote)).fetchall()
        except duckdb.Error as exc:
            raise self.fail(first_line(exc)) from exc
        problem = null_problem(source, keys, timestamp, *counts[0])
        if problem:
            raise self.fail(problem)

    def fit(self) -> dict[str, Any]:
        """Normalization statistics over event time in the fit window (one thread: same bits)."""
        normalize = self.spec.normalize
        assert normalize is not None
        threads = self._scalar("SELECT current_setting('threads')")
        self.con.execute("SET threads = 1")
        try:
            rel = self.con.sql(compile_fit(self.spec, self.sources))
            stats = fit_stats(rel, list(normalize.columns), EVENT_TIMESTAMP, normalize.window)
        except (duckdb.Error, ValueError) as exc:
            raise self.fail(f"normalization: {first_line(exc)}") from exc
        finally:
            self.con.execute(f"SET threads = {int(threads)}")
        return {**stats, "table": self.spec.name, "methods": list(normalize.methods)}

    def batches(self, stats: dict[str, Any] | None) -> Iterator[pa.Table]:
        """The table's rows per batch of whole entities, in output order, finished."""
        numbers = self._plan_batches()
        if len(numbers) <= 1:
            yield self._run(compile_table(self.spec, self.sources), stats)
            return
        sql = compile_table(self.spec, self.sources, BATCH_KEYS)
        keys = ", ".join(quote(k) for k in self.spec.keys)
        for number in numbers:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote(BATCH_KEYS)} AS "
                f'SELECT {keys} FROM {quote(BATCHES)} WHERE "__batch" = {int(number)}'
            )
            yield self._run(sql, stats)

    def _plan_batches(self) -> list[int]:
        """Number the entities in key order: a batch starts every ``chunk_rows`` rows."""
        keys = ", ".join(quote(k) for k in self.spec.keys)
        before = (
            f'sum("__n") OVER (ORDER BY {keys} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)'
        )
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(BATCHES)} AS "
            f'SELECT {keys}, coalesce({before}, 0) // {self.chunk_rows} AS "__batch" '
            f'FROM (SELECT {keys}, count(*) AS "__n" FROM {quote(self.spec.source)} GROUP BY ALL)'
        )
        rows = self.con.execute(f'SELECT DISTINCT "__batch" FROM {quote(BATCHES)} ORDER BY 1')
        return [int(r[0]) for r in rows.fetchall()]

    def _run(self, sql: str, stats: dict[str, Any] | None) -> pa.Table:
        try:
            table = self.con.sql(sql).arrow().read_all()
        except duckdb.Error as exc:
            raise self.fail(first_line(exc)) from exc
        return self._finish(table, stats)

    def _finish(self, table: pa.Table, stats: dict[str, Any] | None) -> pa.Table:
        return finish_table(self.spec, table, stats)

    def empty(self, stats: dict[str, Any] | None) -> pa.Table:
        """A table with no rows and the output schema."""
        sql = f"SELECT * FROM ({compile_table(self.spec, self.sources)}) LIMIT 0"
        return self._run(sql, stats)

    def summary(self, rows_out: int, stats: dict[str, Any] | None) -> dict[str, Any]:
        """Row counts (checked equal) and the normalization fit, for the stage's metrics."""
        if rows_out != self.rows_in:
            raise self.fail(f"{self.rows_in} timeline rows in but {rows_out} rows out")
        out: dict[str, Any] = {"rows_in": self.rows_in, "rows_out": rows_out}
        if stats is not None:
            out["normalization"] = {"fit_rows": stats["rows"], "window": stats["window"]}
        return out


def finish_table(spec: FeatureTableSpec, table: pa.Table, stats: dict[str, Any] | None) -> pa.Table:
    """Append ``<col>_z`` / ``<col>_mm`` (normalize.apply_stats); timestamps UTC µs."""
    normalize = spec.normalize
    if normalize is not None and stats is not None:
        for column in normalize.columns:
            # one column at a time: pandas copies the whole frame on every concat
            scaled = apply_stats(pd.DataFrame({column: table.column(column).to_pandas()}), stats)
            for method in normalize.methods:
                name = f"{column}_{METHOD_SUFFIX[method]}"
                values = scaled[name].to_numpy(dtype="float64")
                table = table.append_column(name, pa.array(values, pa.float64(), from_pandas=True))
    return arrow_timestamps_to_utc_us(table)


class ParquetSink:
    """Writes row groups of exactly ``ROW_GROUP_ROWS`` rows (the last one shorter).

    The bytes then depend on the rows only, not on the batches they arrived in.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.buffered = 0
        self.rows = 0

    def open(self, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(
            self.path, schema, coerce_timestamps="us", allow_truncated_timestamps=True
        )

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.writer is None:
            self.open(table.schema)
        assert self.writer is not None
        self.pending.append(table.cast(self.writer.schema))
        self.buffered += table.num_rows
        self.rows += table.num_rows
        while self.buffered >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def close(self) -> None:
        """Write the last (shorter) row group and close the file."""
        if self.writer is None:
            return
        if self.buffered:
            self._flush(self.buffered)
        self.writer.close()
        self.writer = None

    def _flush(self, rows: int) -> None:
        assert self.writer is not None
        pending = pa.concat_tables(self.pending)
        self.writer.write_table(pending.slice(0, rows).combine_chunks(), row_group_size=rows)
        rest = pending.slice(rows)
        self.pending, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows
