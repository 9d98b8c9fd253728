"""Bind SQL against empty DuckDB tables typed like the sources: types and errors, no data read."""

from __future__ import annotations

from types import TracebackType

import duckdb

from featureops.config import SourceSpec

CREATED = "created"


def quote(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB errors span several lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class BindError(ValueError):
    """An SQL text or expression does not bind (one-line message)."""


def create_empty_sources(con: duckdb.DuckDBPyConnection, sources: dict[str, SourceSpec]) -> None:
    """Create one empty table per source, named after it: declared columns plus ``created``.

    Raises BindError naming the source if a declared type is not a DuckDB type.
    """
    for name, spec in sources.items():
        columns = dict(spec.columns)
        columns.setdefault(CREATED, "TIMESTAMPTZ")
        ddl = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
        try:
            con.execute(f"CREATE TABLE {quote(name)} ({ddl})")
        except duckdb.Error as exc:
            raise BindError(f"sources.{name}.columns: {first_line(exc)}") from exc


class Binder:
    """A private in-memory DuckDB connection holding the empty source tables."""

    def __init__(self, sources: dict[str, SourceSpec]) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        create_empty_sources(self.con, sources)
        self._types: dict[str, dict[str, str]] = {}

    def __enter__(self) -> Binder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.con.close()

    def describe(self, sql: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of a query's result; raises BindError if it does not bind."""
        try:
            return [(r[0], r[1]) for r in self.con.execute(f"DESCRIBE {sql}").fetchall()]
        except duckdb.Error as exc:
            raise BindError(first_line(exc)) from exc

    def types(self, source: str) -> dict[str, str]:
        """Canonical DuckDB types of a source's declared columns (plus ``created``)."""
        if source not in self._types:
            self._types[source] = dict(self.describe(f"SELECT * FROM {quote(source)}"))
        return self._types[source]

    def expression_type(self, relation: str, expr: str) -> str:
        """Type of a row-level expression over ``relation`` (a table name or ``(subquery)``).

        It is also bound in a WHERE clause, which rejects aggregates and window functions
        (they would make a value depend on other rows, or on the batch).
        """
        sql = f"SELECT ({expr}) AS x FROM {relation} WHERE (({expr}) IS NULL OR TRUE)"
        described = self.describe(sql)
        if len(described) != 1:
            raise BindError(f"expected one value, got {len(described)} columns")
        return described[0][1]

    def check_filter(self, source: str, expr: str) -> None:
        """Raise BindError unless ``expr`` is a BOOLEAN row filter over ``source``."""
        kind = self.expression_type(quote(source), expr)
        if kind != "BOOLEAN":
            raise BindError(f"a filter must be BOOLEAN, got {kind}")
