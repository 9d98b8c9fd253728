"""The transform stage on Spark (``transform.engine: spark``): same plan, same files.

Declarations are validated as for DuckDB (:func:`load_feature_tables`: DuckDB binding, one
line per problem), the validated Parquet schemas are checked the same way, then each table:

1. binds on Spark before any data is read: every user SQL expression (transpiled from
   DuckDB with sqlglot, :mod:`.dialect`) and the whole compiled query; a column whose Spark
   type differs from DuckDB's fails naming ``features.<table>.<field>``;
2. checks null keys and timestamps and counts the timeline rows (Spark SQL);
3. fits the normalization statistics with Spark SQL (``avg``, ``stddev_pop``, ``min``,
   ``max`` over the same fit rows) and saves them like the DuckDB path;
4. runs the compiled query (sorted like DuckDB's) and lets Spark write Parquet parts to a
   scratch folder; the driver then streams the parts, in order, through the same
   normalization and row-group writer as the DuckDB path (:class:`.build.ParquetSink`), so
   the file has DuckDB's schema, one file per table and no driver-side copy of the table.

Spark is imported only here, only when the engine is chosen.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from featureops.config import ConfigError, SourceSpec, source_specs
from featureops.features.binding import Binder, quote
from featureops.features.build import (
    ROW_GROUP_ROWS,
    FeatureBuildError,
    _source_rows,
    _sources_used,
    connect,
    finish_table,
    null_counts_sql,
    null_problem,
    write_table,
)
from featureops.features.compiler import compile_fit, compile_table
from featureops.features.dialect import SPARK, TranspileError
from featureops.features.spec import CREATED, EVENT_TIMESTAMP, FeatureTableSpec, load_feature_tables
from featureops.normalize import epoch_us, fit_stats, window_bounds

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featureops.config.schema import SparkModel

# Session settings the build relies on (UTC, microsecond Parquet timestamps).
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}
_SPARK_ARROW = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}


def write_feature_tables_spark(
    params: dict[str, Any],
    validated_dir: str | Path,
    features_dir: str | Path,
    stats_dir: str | Path,
    settings: SparkModel,
    session: SparkSession | None = None,
) -> dict[str, Any]:
    """:func:`featureops.features.build.write_feature_tables` computed by Spark SQL."""
    sources = source_specs(params)
    specs = load_feature_tables(params, sources)
    used = _sources_used(specs.values())
    con = connect(validated_dir, sources, used)  # existence and declared types, metadata only
    try:
        source_rows = _source_rows(con, specs.values())
    finally:
        con.close()
    features_dir, stats_dir = Path(features_dir), Path(stats_dir)
    summary: dict[str, Any] = {"sources": source_rows, "tables": {}}
    with spark_session(settings, session) as spark, Binder(sources) as binder:
        for name in used:
            _register(spark, name, sources[name], Path(validated_dir) / f"{name}.parquet")
        scratch = Path(tempfile.mkdtemp(prefix="featureops-spark-", dir=settings.scratch_dir))
        checked: set[tuple[str, tuple[str, ...], str]] = set()  # null checks done
        try:
            # every table binds on Spark before any data is read
            builds = [SparkTableBuild(spark, s, sources, binder, checked) for s in specs.values()]
            for build in builds:
                name = build.spec.name
                build.check()
                summary["tables"][name] = write_table(
                    build,
                    partial(build.batches, scratch=scratch / name),
                    features_dir,
                    stats_dir,
                )
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return summary


@contextmanager
def spark_session(settings: SparkModel, session: SparkSession | None) -> Iterator[SparkSession]:
    """The given or active session (left running), else one started from ``settings``.

    Either way the session runs in UTC and writes microsecond Parquet timestamps.
    """
    from pyspark.sql import SparkSession

    active = session or SparkSession.getActiveSession()
    if active is not None:
        for key, value in REQUIRED_CONF.items():
            active.conf.set(key, value)
        yield active
        return
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    conf = {**DEFAULT_CONF, **{k: _conf_value(v) for k, v in settings.conf.items()}}
    for key, value in {**conf, **REQUIRED_CONF}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()


def _conf_value(value: str | int | float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _register(spark: SparkSession, name: str, spec: SourceSpec, path: Path) -> None:
    """A temp view named after the source: its declared columns and ``created``."""
    q = SPARK.quote
    columns = ", ".join(q(c) for c in dict.fromkeys([*spec.columns, CREATED]))
    spark.read.parquet(str(path)).createOrReplaceTempView(f"__raw_{name}")
    spark.sql(
        f"CREATE OR REPLACE TEMP VIEW {q(name)} AS SELECT {columns} FROM {q('__raw_' + name)}"
    )


def spark_message(exc: BaseException) -> str:
    """One line from a Spark error: the ``raise_error`` message if any, else the first line."""
    text = str(exc)
    raised = re.search(r"\[USER_RAISED_EXCEPTION\] (.*?)(?: SQLSTATE: \w+|$)", text, re.M)
    if raised:
        return raised.group(1).strip()
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _spark_errors() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


class SparkTableBuild:
    """One table on Spark: binding (on creation), checks, fit, the rows, summary."""

    def __init__(
        self,
        spark: SparkSession,
        spec: FeatureTableSpec,
        sources: dict[str, SourceSpec],
        binder: Binder,
        checked: set[tuple[str, tuple[str, ...], str]] | None = None,
    ) -> None:
        self.spark, self.spec, self.sources, self.binder = spark, spec, sources, binder
        self.checked = set() if checked is None else checked
        self.errors = _spark_errors()
        self.rows = self._bind()  # analysed once: Spark's analysis of a wide plan is slow
        self.rows_in = 0

    def check(self) -> None:
        """Null keys or timestamps fail naming the source; count the timeline rows."""
        spec, q = self.spec, SPARK.quote
        self._check_nulls(spec.source, spec.keys, spec.timestamp)
        for a in spec.as_of:
            self._check_nulls(a.source, a.keys, self.sources[a.source].timestamp)
        where = f" WHERE ({SPARK.expression(spec.filter)})" if spec.filter else ""
        self.rows_in = int(self._collect(f"SELECT count(*) FROM {q(spec.source)}{where}")[0][0])

    def fail(self, message: str) -> FeatureBuildError:
        return FeatureBuildError(f"features.{self.spec.name}: {message}")

    def _collect(self, sql: str) -> list[Any]:
        try:
            return self.spark.sql(sql).collect()
        except self.errors as exc:
            raise self.fail(spark_message(exc)) from exc

    # -- binding -------------------------------------------------------------------------
    def _bind(self) -> DataFrame:
        """Bind every user expression, then the query; return the query (no data read)."""
        spec = self.spec
        path = f"features.{spec.name}"
        if spec.filter:
            self._expression_type(spec.source, spec.filter, f"{path}.filter", "BOOLEAN")
        for name, expr in spec.derive:
            expected = self.binder.expression_type(quote(spec.source), expr)
            self._expression_type(spec.source, expr, f"{path}.derive.{name}", expected)
        for i, a in enumerate(spec.as_of):
            if a.filter:
                self._expression_type(a.source, a.filter, f"{path}.as_of[{i}].filter", "BOOLEAN")
        for name, expr in spec.compute:  # bound below, with the whole query
            try:
                SPARK.expression(expr)
            except TranspileError as exc:
                where = f"{path}.compute.{name}"
                raise _config_fail(where, f"engine spark: does not transpile: {exc}") from exc
        try:
            rows = self.spark.sql(compile_table(spec, self.sources, dialect=SPARK))
            schema = rows.schema
        except TranspileError as exc:
            raise _config_fail(path, f"engine spark: does not transpile: {exc}") from exc
        except self.errors as exc:
            message = f"engine spark: compiled SQL does not bind: {spark_message(exc)}"
            raise _config_fail(path, message) from exc
        expected = self._expected_raw_schema()
        computed = dict(spec.compute)
        for field in schema.fields:
            want = expected.field(field.name).type
            if not _same_type(field.dataType.simpleString(), want):
                where = f"{path}.compute.{field.name}" if field.name in computed else path
                raise _config_fail(
                    where,
                    f"column {field.name!r} is {field.dataType.simpleString()} on Spark but "
                    f"{want} on DuckDB: cast it explicitly",
                )
        return rows

    def _expression_type(self, source: str, expr: str, where: str, expected: str) -> None:
        try:
            spark_sql = SPARK.expression(expr)
        except TranspileError as exc:
            raise _config_fail(where, f"engine spark: does not transpile: {exc}") from exc
        try:
            relation, x = SPARK.quote(source), f"({spark_sql})"
            sql = f"SELECT {x} AS x FROM {relation} WHERE ({x} IS NULL OR TRUE)"
            schema = self.spark.sql(sql).schema
        except self.errors as exc:
            raise _config_fail(
                where, f"engine spark: does not bind: {spark_message(exc)} (as {spark_sql!r})"
            ) from exc
        got = schema.fields[0].dataType.simpleString()
        if not _same_type(got, _duck_arrow(expected)):
            raise _config_fail(
                where,
                f"is {got} on Spark but {expected} on DuckDB (as {spark_sql!r}): cast it explicitly",
            )

    def _expected_raw_schema(self) -> pa.Schema:
        """The DuckDB output schema before normalization (from empty typed tables)."""
        if not hasattr(self, "_raw_schema"):
            sql = f"SELECT * FROM ({compile_table(self.spec, self.sources)}) LIMIT 0"
            try:
                table = self.binder.con.sql(sql).arrow().read_all()
            except Exception as exc:  # a DuckDB error: the spec loader bound it already
                raise self.fail(str(exc).splitlines()[0]) from exc
            self._raw_schema = finish_table(self.spec, table, None).schema
        return self._raw_schema

    # -- checks, fit, rows ---------------------------------------------------------------
    def _check_nulls(self, source: str, keys: tuple[str, ...], timestamp: str) -> None:
        if (source, keys, timestamp) in self.checked:  # once per run (a job each on Spark)
            return
        keys_null, ts_null = self._collect(null_counts_sql(source, keys, timestamp, SPARK.quote))[0]
        problem = null_problem(source, keys, timestamp, keys_null, ts_null)
        if problem:
            raise self.fail(problem)
        self.checked.add((source, keys, timestamp))

    def fit(self) -> dict[str, Any]:
        """Normalization statistics on Spark: the same rows and formulas as the DuckDB fit.

        The mean and std add doubles in Spark's order, so they may differ from DuckDB's in
        the last bits; min, max and the row count are exact.
        """
        normalize = self.spec.normalize
        assert normalize is not None
        q = SPARK.quote
        start, end = window_bounds(normalize.window)
        view = f"__fit_{self.spec.name}"
        try:
            self.spark.sql(compile_fit(self.spec, self.sources, SPARK)).createOrReplaceTempView(
                view
            )
        except self.errors as exc:
            raise self.fail(f"normalization: {spark_message(exc)}") from exc
        aggs = ["count(*)"] + [
            f"{fn}(CAST({q(c)} AS DOUBLE))"
            for c in normalize.columns
            for fn in ("avg", "stddev_pop", "min", "max")
        ]
        ts = f"unix_micros({q(EVENT_TIMESTAMP)})"
        row = self._collect(
            f"SELECT {', '.join(aggs)} FROM {q(view)} "
            f"WHERE {ts} >= {epoch_us(start)} AND {ts} < {epoch_us(end)}"
        )[0]
        rows, values = int(row[0]), list(row[1:])
        if rows == 0:
            raise self.fail(f"normalization: no rows in the normalization window [{start}, {end})")
        # the same file layout as normalize.fit_stats (its window, method texts) ...
        one = pd.DataFrame({EVENT_TIMESTAMP: [start]})
        stats = fit_stats(one, [], EVENT_TIMESTAMP, normalize.window)
        # ... with Spark's numbers
        stats["rows"] = rows
        stats["columns"] = {
            col: {
                name: None if v is None else float(v)
                for name, v in zip(
                    ("mean", "std", "min", "max"), values[4 * i : 4 * i + 4], strict=True
                )
            }
            for i, col in enumerate(normalize.columns)
        }
        return {**stats, "table": self.spec.name, "methods": list(normalize.methods)}

    def batches(self, stats: dict[str, Any] | None, scratch: Path) -> Iterator[pa.Table]:
        """The rows in output order: Spark writes sorted parts, read back one by one."""
        try:
            self.rows.write.mode("overwrite").parquet(str(scratch))
        except self.errors as exc:
            raise self.fail(spark_message(exc)) from exc
        schema = self._expected_raw_schema()
        try:
            for part in sorted(scratch.glob("part-*.parquet")):
                for batch in pq.ParquetFile(part).iter_batches(batch_size=ROW_GROUP_ROWS):
                    table = pa.Table.from_batches([batch]).select(schema.names)
                    try:
                        table = table.cast(schema)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise self.fail(f"engine spark: {exc}") from exc
                    yield finish_table(self.spec, table, stats)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def empty(self, stats: dict[str, Any] | None) -> pa.Table:
        return finish_table(self.spec, self._expected_raw_schema().empty_table(), stats)

    def summary(self, rows_out: int, stats: dict[str, Any] | None) -> dict[str, Any]:
        if rows_out != self.rows_in:
            raise self.fail(f"{self.rows_in} timeline rows in but {rows_out} rows out")
        out: dict[str, Any] = {"rows_in": self.rows_in, "rows_out": rows_out}
        if stats is not None:
            out["normalization"] = {"fit_rows": stats["rows"], "window": stats["window"]}
        return out


def _config_fail(where: str, message: str) -> ConfigError:
    """A declaration that does not bind on Spark: one line naming the field."""
    return ConfigError(f"params.yaml: {where}: " + " ".join(message.split()))


def _duck_arrow(duck_type: str) -> pa.DataType | None:
    """The Arrow type DuckDB gives ``duck_type`` (None when not compared)."""
    simple = {
        "BOOLEAN": pa.bool_(),
        "TINYINT": pa.int8(),
        "SMALLINT": pa.int16(),
        "INTEGER": pa.int32(),
        "BIGINT": pa.int64(),
        "FLOAT": pa.float32(),
        "DOUBLE": pa.float64(),
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    }
    if duck_type in simple:
        return simple[duck_type]
    match = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duck_type)
    return pa.decimal128(int(match[1]), int(match[2])) if match else None


def _same_type(spark_type: str, arrow_type: pa.DataType | None) -> bool:
    """True when a Spark column type gives the Arrow type DuckDB writes (or is not compared)."""
    if arrow_type is None:
        return True
    if pa.types.is_timestamp(arrow_type):
        return spark_type in ("timestamp", "timestamp_ntz")
    if pa.types.is_decimal(arrow_type):
        return spark_type.startswith("decimal")
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return spark_type == "string"
    known = _SPARK_ARROW.get(spark_type)
    return known is None or known == arrow_type


__all__ = ["SparkTableBuild", "spark_session", "write_feature_tables_spark"]
