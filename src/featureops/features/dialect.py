"""SQL dialects of the feature-table compiler: DuckDB (the default) and Spark SQL.

:class:`~featureops.features.compiler._Query` builds one intermediate form per table (its
CTEs, window frames, aggregate parts and fixed-point channels); a dialect renders the few
constructs that differ between engines. :data:`DUCKDB` renders exactly the SQL the compiler
always produced. :data:`SPARK` renders the same plan for Spark SQL so that values are equal
bit for bit where DuckDB's are exact:

- fixed-point channels: DuckDB rounds ``x / scale`` to a HUGEINT (half to even) and sums
  HUGEINTs; Spark rounds with ``bround`` (half to even), converts to ``DECIMAL(38,0)`` in two
  exact 48-bit halves (a direct double -> decimal cast goes through a decimal string) and sums
  decimals exactly;
- the sum back to DOUBLE follows DuckDB's HUGEINT -> DOUBLE cast step by step
  (``double(lower) + double(upper) * 2**64`` on the two 64-bit halves), not a correctly
  rounded conversion, so both give the same double;
- integer sums are exact in both (DuckDB HUGEINT, Spark ``DECIMAL(38,0)``);
- ``ORDER BY`` says ``NULLS LAST`` (DuckDB's default; Spark's is first).

User SQL (``filter``, ``derive``, ``compute``, ``as_of.filter``) is written for DuckDB and
transpiled to Spark SQL with sqlglot; see ``docs/feature-tables.md``.
"""

from __future__ import annotations

from functools import lru_cache

INT64 = 2**64
HALF = 2**48  # fixed-point doubles (|y| < 2**96) are split into two exact halves


class Dialect:
    """DuckDB SQL: the text the compiler has always produced."""

    name = "duckdb"
    semi_join = "SEMI JOIN"
    union_by_name = True

    def quote(self, name: str) -> str:
        """A quoted identifier."""
        return '"' + name.replace('"', '""') + '"'

    def literal(self, text: str) -> str:
        """A string literal."""
        return "'" + text.replace("'", "''") + "'"

    def expression(self, sql: str) -> str:
        """A user SQL expression (written for DuckDB) in this dialect."""
        return sql

    def cast(self, expr: str, kind: str) -> str:
        """``expr`` cast to DOUBLE or BIGINT."""
        return f"{expr}::{kind}"

    def timestamp(self, expr: str) -> str:
        """A timestamp column as a UTC timestamp."""
        return f"({expr})::TIMESTAMPTZ"

    def epoch_us(self, expr: str) -> str:
        return f"epoch_us({expr})"

    def plus_micros(self, ts: str, t: str, micros: int) -> str:
        """The timestamp ``micros`` after ``ts`` (whose epoch microseconds are ``t``)."""
        return f"{ts} + to_microseconds({micros})"

    def struct(self, fields: list[tuple[str, str]]) -> str:
        return "{" + ", ".join(f"'{k}': {v}" for k, v in fields) + "}"

    def field(self, struct: str, name: str) -> str:
        return f"struct_extract({struct}, '{name}')"

    def isfinite(self, expr: str) -> str:
        return f"isfinite({expr})"

    def error(self, message: str) -> str:
        return f"error({self.literal(message)})"

    def double(self, text: str) -> str:
        """A DOUBLE literal from its decimal text."""
        return f"{text}::DOUBLE"

    def zero(self) -> str:
        return "0.0"

    def fixed(self, expr: str) -> str:
        """A DOUBLE holding an integer value below 2**96, rounded half to even, as an integer."""
        return f"({expr})::HUGEINT"

    def int_sum(self, value: str, kind: str) -> str:
        """An exact sum of an integer or DECIMAL column (the window aggregate)."""
        return f"sum({value})"

    def sum_to_double(self, total: str, kind: str) -> str:
        """An exact sum (of ``fixed`` values, or of a ``kind`` column) as DOUBLE."""
        return f"{total}::DOUBLE"

    def sum_to_bigint(self, total: str) -> str:
        return f"{total}::BIGINT"

    def order(self, column: str) -> str:
        return column


class SparkDialect(Dialect):
    """Spark SQL (3.4+, tested on 4.x) rendering of the same plan."""

    name = "spark"
    semi_join = "LEFT SEMI JOIN"
    union_by_name = False

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def literal(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def expression(self, sql: str) -> str:
        return duckdb_to_spark(sql)

    def cast(self, expr: str, kind: str) -> str:
        return f"CAST({expr} AS {kind})"

    def timestamp(self, expr: str) -> str:
        return f"CAST(({expr}) AS TIMESTAMP)"

    def epoch_us(self, expr: str) -> str:
        return f"unix_micros({expr})"

    def plus_micros(self, ts: str, t: str, micros: int) -> str:
        return f"timestamp_micros({t} + {micros})"

    def struct(self, fields: list[tuple[str, str]]) -> str:
        return "named_struct(" + ", ".join(f"'{k}', {v}" for k, v in fields) + ")"

    def field(self, struct: str, name: str) -> str:
        return f"{struct}.{self.quote(name)}"

    def isfinite(self, expr: str) -> str:
        return f"(NOT isnan({expr}) AND abs({expr}) < CAST('Infinity' AS DOUBLE))"

    def error(self, message: str) -> str:
        return f"raise_error({self.literal(message)})"

    def double(self, text: str) -> str:
        return f"{text}D"

    def zero(self) -> str:
        return "0.0D"

    def fixed(self, expr: str) -> str:
        y = f"bround({expr}, 0)"
        high = f"CAST({y} / {HALF}.0D AS BIGINT)"  # exact: |y| / 2**48 < 2**48, truncated
        low = f"CAST({y} - {high} * {HALF}.0D AS BIGINT)"  # exact: an integer below 2**48
        return f"(CAST({high} AS DECIMAL(38,0)) * {HALF} + {low})"

    def int_sum(self, value: str, kind: str) -> str:
        if kind.startswith("DECIMAL"):
            return f"sum({value})"
        return f"sum(CAST({value} AS DECIMAL(38,0)))"

    def sum_to_double(self, total: str, kind: str) -> str:
        if kind.startswith("DECIMAL"):
            return f"CAST({total} AS DOUBLE)"
        # DuckDB's HUGEINT -> DOUBLE: upper -1: -double(2**64 - 1 - lower) - 1,
        # else double(lower) + double(upper) * 2**64 (lower, upper: the 64-bit halves)
        lower = f"pmod({total}, CAST({INT64} AS DECIMAL(38,0)))"
        upper = f"CAST(({total} - {lower}) div CAST({INT64} AS DECIMAL(38,0)) AS BIGINT)"
        return (
            f"(CASE WHEN {upper} = -1 THEN -CAST({INT64 - 1} - {lower} AS DOUBLE) - 1.0D "
            f"ELSE CAST({lower} AS DOUBLE) + CAST({upper} AS DOUBLE) * {INT64}.0D END)"
        )

    def sum_to_bigint(self, total: str) -> str:
        return f"CAST({total} AS BIGINT)"

    def order(self, column: str) -> str:
        return f"{column} NULLS LAST"


DUCKDB = Dialect()
SPARK = SparkDialect()


class TranspileError(ValueError):
    """A DuckDB SQL expression that sqlglot cannot render in Spark SQL (one line)."""


@lru_cache(maxsize=512)
def duckdb_to_spark(sql: str) -> str:
    """A DuckDB SQL expression rendered in Spark SQL by sqlglot (raises TranspileError)."""
    import sqlglot  # only the Spark engine needs it
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        out = sqlglot.transpile(
            sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as exc:
        lines = str(exc).strip().splitlines()
        raise TranspileError(lines[0] if lines else type(exc).__name__) from exc
    if len(out) != 1:
        raise TranspileError(f"expected one expression, got {len(out)}")
    return out[0]
