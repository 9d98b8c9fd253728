"""Feature-table declarations (``params.yaml: features``): typed, and validated before any data.

:func:`load_feature_tables` turns each ``features.<table>`` mapping into a frozen
:class:`FeatureTableSpec`. Every check runs here, without reading data: unknown fields,
sources or columns, unsupported aggregations, bad windows, key count or type mismatches,
duplicate output names, and SQL expressions (``filter``, ``derive``, ``compute``, ``as_of``
filters) bound against empty DuckDB tables typed like the sources. Each failure is one
:class:`~featureops.config.ConfigError` line naming ``features.<table>.<field>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from featureops.config import ConfigError, SourceSpec
from featureops.durations import UNIT_US, Duration, parse_duration
from featureops.features.binding import Binder, BindError, quote
from featureops.normalize import window_bounds

EVENT_TIMESTAMP = "event_timestamp"
CREATED = "created"
WINDOW_AGGS = ("count", "sum", "mean", "min", "max", "std", "last")
AS_OF_AGGS = (*WINDOW_AGGS, "since_last")
NUMERIC_AGGS = frozenset({"sum", "mean", "std"})
METHOD_SUFFIX = {"z": "z", "minmax": "mm"}
INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})
TIME_TYPES = frozenset(
    {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"}
)
TABLE_FIELDS = (
    "source",
    "keys",
    "timestamp",
    "filter",
    "derive",
    "columns",
    "windows",
    "as_of",
    "compute",
    "exclude",
    "normalize",
    "offline_only",
)
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_numeric(duck_type: str) -> bool:
    """True for DuckDB integer, floating-point and DECIMAL types."""
    return duck_type in INTEGER_TYPES or duck_type in FLOAT_TYPES or duck_type.startswith("DECIMAL")


@dataclass(frozen=True)
class WindowSpec:
    """One window feature ``<column>_<agg>_<window>``: ``agg`` over ``(ts - window, ts]``."""

    name: str
    column: str
    agg: str
    window: Duration
    column_type: str

    @property
    def output_numeric(self) -> bool:
        return self.agg in ("count", *NUMERIC_AGGS) or is_numeric(self.column_type)


@dataclass(frozen=True)
class AsOfSpec:
    """A lookup into another source with the same keys, as of each row's time."""

    name: str
    source: str
    agg: str
    keys: tuple[str, ...]
    column: str | None = None
    column_type: str | None = None
    window: Duration | None = None
    filter: str | None = None
    unit: str = "h"


@dataclass(frozen=True)
class NormalizeSpec:
    """Columns normalized with statistics fit on event time in ``[start, end)``."""

    columns: tuple[str, ...]
    methods: tuple[str, ...]
    start: str
    end: str

    @property
    def window(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end}

    @property
    def output_names(self) -> list[str]:
        """``<col>_z`` / ``<col>_mm`` per column, methods in declared order."""
        return [f"{c}_{METHOD_SUFFIX[m]}" for c in self.columns for m in self.methods]


@dataclass(frozen=True)
class FeatureTableSpec:
    """One ``features.<table>`` declaration, validated."""

    name: str
    source: str
    keys: tuple[str, ...]
    timestamp: str
    columns: tuple[str, ...] = ()
    filter: str | None = None
    derive: tuple[tuple[str, str], ...] = ()
    windows: tuple[WindowSpec, ...] = ()
    as_of: tuple[AsOfSpec, ...] = ()
    compute: tuple[tuple[str, str], ...] = ()
    exclude: tuple[str, ...] = ()
    normalize: NormalizeSpec | None = None
    offline_only: bool = False

    @property
    def features(self) -> list[str]:
        """Feature names in declaration order, excluded ones included (before normalization)."""
        return [
            *self.columns,
            *(w.name for w in self.windows),
            *(a.name for a in self.as_of),
            *(name for name, _ in self.compute),
        ]

    @property
    def output_columns(self) -> list[str]:
        """The written columns, in order."""
        kept = [f for f in self.features if f not in self.exclude]
        normalized = self.normalize.output_names if self.normalize else []
        return [*self.keys, EVENT_TIMESTAMP, CREATED, *kept, *normalized]


def load_feature_tables(
    params: dict[str, Any], sources: dict[str, SourceSpec]
) -> dict[str, FeatureTableSpec]:
    """Every ``features.<table>`` of ``params`` as a validated spec, in declaration order.

    Reads no data: SQL is bound against empty tables typed like ``sources``. Raises
    ConfigError (one line naming ``features.<table>.<field>``) on the first problem.
    """
    declared = params.get("features")
    if not isinstance(declared, dict) or not declared:
        raise ConfigError("params.yaml: features: expected a mapping of table name -> declaration")
    try:
        binder = Binder(sources)
    except BindError as exc:
        raise ConfigError(f"params.yaml: {exc}") from exc
    with binder:
        return {
            str(name): _TableLoader(str(name), decl, sources, binder).load()
            for name, decl in declared.items()
        }


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"params.yaml: {path}: " + " ".join(str(message).split()))


def _mapping(value: Any, path: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "expected a mapping")
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"unknown field (expected one of {', '.join(fields)})")
    return value


def _names(value: Any, path: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A name or a list of names, no duplicates."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise _fail(path, "expected a name or a list of names")
    if not items and not allow_empty:
        raise _fail(path, "must not be empty")
    seen: set[str] = set()
    for item in items:
        if item.lower() in seen:
            raise _fail(path, f"{item!r} is listed twice")
        seen.add(item.lower())
    return tuple(items)


def _sql(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "expected a DuckDB SQL expression (a non-empty string)")
    return value.strip()


def _new_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(path, "expected a column name")
    if value.startswith("__"):
        raise _fail(path, f"{value!r}: names starting with '__' are reserved")
    return value


def _duration(value: Any, path: str) -> Duration:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(path, str(exc)) from exc


class _TableLoader:
    """Parses and checks one ``features.<table>`` declaration."""

    def __init__(
        self, name: str, decl: Any, sources: dict[str, SourceSpec], binder: Binder
    ) -> None:
        self.name, self.path = name, f"features.{name}"
        self.sources, self.binder = sources, binder
        self.decl = _mapping(decl, self.path, TABLE_FIELDS)
        if not _TABLE_NAME.fullmatch(name):
            raise _fail(self.path, "table names are letters, digits and '_' (a file is named so)")

    def load(self) -> FeatureTableSpec:
        d, path = self.decl, self.path
        source = self._source(d.get("source"), f"{path}.source")
        spec = self.sources[source]
        src_types = self.binder.types(source)
        keys = _names(d.get("keys", list(spec.keys)), f"{path}.keys")
        self._columns_exist(keys, src_types, f"{path}.keys", source)
        timestamp = d.get("timestamp", spec.timestamp)
        self._timestamp(timestamp, src_types, f"{path}.timestamp", source)
        table_filter = None
        if d.get("filter") is not None:
            table_filter = self._filter(source, d["filter"], f"{path}.filter")
        derive, types = self._derive(source, d.get("derive"), src_types)
        columns = _names(d.get("columns", []), f"{path}.columns", allow_empty=True)
        self._columns_exist(columns, types, f"{path}.columns", source)
        windows = self._windows(d.get("windows", []), types)
        key_types = [src_types[k] for k in keys]
        as_of = tuple(
            self._as_of(a, f"{path}.as_of[{i}]", key_types, keys)
            for i, a in enumerate(self._list(d.get("as_of", []), f"{path}.as_of"))
        )
        offline_only = d.get("offline_only", False)
        if not isinstance(offline_only, bool):
            raise _fail(f"{path}.offline_only", "expected true or false")
        table = FeatureTableSpec(
            name=self.name,
            source=source,
            keys=keys,
            timestamp=timestamp,
            columns=columns,
            filter=table_filter,
            derive=derive,
            windows=windows,
            as_of=as_of,
            offline_only=offline_only,
        )
        compute = self._compute(table, d.get("compute"))
        exclude = _names(d.get("exclude", []), f"{path}.exclude", allow_empty=True)
        features = [*table.features, *(n for n, _ in compute)]
        for i, name in enumerate(exclude):
            if name not in features:
                raise _fail(f"{path}.exclude[{i}]", f"{name!r} is not a feature of this table")
        numeric = [c for c in columns if is_numeric(types[c])]
        numeric += [w.name for w in windows if w.output_numeric]
        normalize = None
        if d.get("normalize") is not None:
            normalize = self._normalize(d["normalize"], numeric, exclude)
        table = replace(table, compute=compute, exclude=exclude, normalize=normalize)
        self._unique_outputs(table)
        self._binds(table)
        return table

    # -- pieces ------------------------------------------------------------------------
    def _list(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise _fail(path, "expected a list")
        return value

    def _source(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise _fail(path, "expected the name of a source")
        if value not in self.sources:
            known = ", ".join(self.sources)
            raise _fail(path, f"unknown source {value!r} (sources: {known})")
        return value

    def _columns_exist(
        self, names: tuple[str, ...], types: dict[str, str], path: str, source: str
    ) -> None:
        for name in names:
            if name not in types or name == CREATED:
                raise _fail(path, f"unknown column {name!r} of source {source!r}")

    def _timestamp(self, value: Any, types: dict[str, str], path: str, source: str) -> None:
        if not isinstance(value, str) or value not in types:
            raise _fail(path, f"unknown column {value!r} of source {source!r}")
        if types[value] not in TIME_TYPES:
            raise _fail(path, f"{value!r} is {types[value]}, not a timestamp")

    def _filter(self, source: str, value: Any, path: str) -> str:
        expr = _sql(value, path)
        try:
            self.binder.check_filter(source, expr)
        except BindError as exc:
            raise _fail(path, f"does not bind: {exc}") from exc
        return expr

    def _derive(
        self, source: str, value: Any, src_types: dict[str, str]
    ) -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
        path = f"{self.path}.derive"
        if value is None:
            return (), dict(src_types)
        if not isinstance(value, dict):
            raise _fail(path, "expected a mapping of column name -> SQL expression")
        types, derive = dict(src_types), []
        lower = {c.lower() for c in src_types}
        for name, raw in value.items():
            name = _new_name(name, path)
            if name.lower() in lower:
                raise _fail(f"{path}.{name}", "already a column of the source")
            expr = _sql(raw, f"{path}.{name}")
            try:
                types[name] = self.binder.expression_type(quote(source), expr)
            except BindError as exc:
                raise _fail(f"{path}.{name}", f"does not bind: {exc}") from exc
            lower.add(name.lower())
            derive.append((name, expr))
        return tuple(derive), types

    def _windows(self, value: Any, types: dict[str, str]) -> tuple[WindowSpec, ...]:
        out: list[WindowSpec] = []
        for i, raw in enumerate(self._list(value, f"{self.path}.windows")):
            path = f"{self.path}.windows[{i}]"
            decl = _mapping(raw, path, ("columns", "aggs", "every"))
            columns = _names(decl.get("columns"), f"{path}.columns")
            self._columns_exist(columns, types, f"{path}.columns", self.decl["source"])
            aggs = _names(decl.get("aggs"), f"{path}.aggs")
            for agg in aggs:
                if agg not in WINDOW_AGGS:
                    raise _fail(
                        f"{path}.aggs",
                        f"unsupported aggregation {agg!r} ({', '.join(WINDOW_AGGS)})",
                    )
            every = []
            for text in _names(decl.get("every"), f"{path}.every"):
                window = _duration(text, f"{path}.every")
                if window.forward:
                    raise _fail(f"{path}.every", "windows look back; use as_of for 'forward'")
                every.append(window)
            for column in columns:
                for agg in aggs:
                    if agg in NUMERIC_AGGS and not is_numeric(types[column]):
                        raise _fail(
                            f"{path}.aggs",
                            f"{agg} needs a numeric column, {column!r} is {types[column]}",
                        )
                for window in every:
                    out.extend(
                        WindowSpec(
                            f"{column}_{agg}_{window.text}", column, agg, window, types[column]
                        )
                        for agg in aggs
                    )
        return tuple(out)

    def _as_of(
        self, raw: Any, path: str, key_types: list[str], table_keys: tuple[str, ...]
    ) -> AsOfSpec:
        fields = ("source", "name", "agg", "column", "window", "filter", "keys", "unit")
        decl = _mapping(raw, path, fields)
        source = self._source(decl.get("source"), f"{path}.source")
        types = self.binder.types(source)
        self._timestamp(self.sources[source].timestamp, types, f"{path}.source", source)
        name = _new_name(decl.get("name"), f"{path}.name")
        agg = decl.get("agg")
        if agg not in AS_OF_AGGS:
            raise _fail(f"{path}.agg", f"unsupported aggregation {agg!r} ({', '.join(AS_OF_AGGS)})")
        column, column_type = decl.get("column"), None
        if column is None and agg not in ("count", "since_last"):
            raise _fail(f"{path}.column", f"required for agg {agg}")
        if column is not None:
            if not isinstance(column, str):
                raise _fail(f"{path}.column", "expected a column name")
            if agg == "since_last":
                raise _fail(f"{path}.column", "since_last uses no column")
            self._columns_exist(_names(column, f"{path}.column"), types, f"{path}.column", source)
            column_type = types[column]
            if agg in NUMERIC_AGGS and not is_numeric(column_type):
                raise _fail(
                    f"{path}.column", f"{agg} needs a numeric column, {column!r} is {column_type}"
                )
        window = None
        if decl.get("window") is not None:
            window = _duration(decl["window"], f"{path}.window")
            if window.forward and agg == "since_last":
                raise _fail(f"{path}.window", "since_last looks back; it cannot be 'forward'")
        unit = decl.get("unit", "h")
        if "unit" in decl and agg != "since_last":
            raise _fail(f"{path}.unit", "only since_last has a unit")
        if unit not in UNIT_US:
            raise _fail(f"{path}.unit", f"expected one of {', '.join(UNIT_US)}, got {unit!r}")
        keys = _names(decl.get("keys", list(table_keys)), f"{path}.keys")
        self._columns_exist(keys, types, f"{path}.keys", source)
        if len(keys) != len(key_types):
            raise _fail(f"{path}.keys", f"{len(keys)} keys for the table's {len(key_types)}")
        for key, own, table_key in zip(keys, key_types, table_keys, strict=True):
            if types[key] != own:
                raise _fail(
                    f"{path}.keys",
                    f"{source}.{key} is {types[key]} but {self.decl['source']}.{table_key} is {own}",
                )
        as_of_filter = None
        if decl.get("filter") is not None:
            as_of_filter = self._filter(source, decl["filter"], f"{path}.filter")
        return AsOfSpec(name, source, agg, keys, column, column_type, window, as_of_filter, unit)

    def _compute(self, table: FeatureTableSpec, value: Any) -> tuple[tuple[str, str], ...]:
        path = f"{self.path}.compute"
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise _fail(path, "expected a mapping of column name -> SQL expression")
        from featureops.features.compiler import compile_table  # compiler imports this module

        relation = f"({compile_table(table, self.sources)})"
        out = []
        for name, raw in value.items():
            name = _new_name(name, path)
            expr = _sql(raw, f"{path}.{name}")
            try:
                self.binder.expression_type(relation, expr)
            except BindError as exc:
                raise _fail(f"{path}.{name}", f"does not bind: {exc}") from exc
            out.append((name, expr))
        return tuple(out)

    def _normalize(self, raw: Any, numeric: list[str], exclude: tuple[str, ...]) -> NormalizeSpec:
        path = f"{self.path}.normalize"
        decl = _mapping(raw, path, ("columns", "methods", "fit"))
        value = decl.get("columns", "all")
        if value == "all":
            columns = tuple(c for c in numeric if c not in exclude)
            if not columns:
                raise _fail(f"{path}.columns", "no numeric pass-through or window column")
        else:
            columns = _names(value, f"{path}.columns")
            for c in columns:
                if c not in numeric:
                    raise _fail(
                        f"{path}.columns", f"{c!r} is not a numeric pass-through or window column"
                    )
                if c in exclude:
                    raise _fail(f"{path}.columns", f"{c!r} is excluded")
        methods = _names(decl.get("methods", ["z", "minmax"]), f"{path}.methods")
        for m in methods:
            if m not in METHOD_SUFFIX:
                raise _fail(f"{path}.methods", f"unknown method {m!r} (z, minmax)")
        fit = _mapping(decl.get("fit"), f"{path}.fit", ("start", "end"))
        try:
            window_bounds({"start": str(fit["start"]), "end": str(fit["end"])})
        except (KeyError, ValueError) as exc:
            raise _fail(f"{path}.fit", f"expected start < end timestamps ({exc})") from exc
        return NormalizeSpec(columns, methods, str(fit["start"]), str(fit["end"]))

    def _unique_outputs(self, table: FeatureTableSpec) -> None:
        """No two output columns share a name (DuckDB names are case-insensitive)."""
        seen = {k.lower(): "keys" for k in table.keys}
        normalized = table.normalize.output_names if table.normalize else []
        named = [
            *((c, "columns") for c in table.columns),
            *((w.name, "windows") for w in table.windows),
            *((a.name, f"as_of[{i}].name") for i, a in enumerate(table.as_of)),
            *((n, f"compute.{n}") for n, _ in table.compute),
            *((n, "normalize") for n in normalized),
        ]
        for name, field in [(k, "keys") for k in table.keys] + named:
            if name.lower() in (EVENT_TIMESTAMP, CREATED):
                raise _fail(f"{self.path}.{field}", f"{name!r} is a reserved output column")
        for name, field in named:
            if name.lower() in seen:
                other = f"{self.path}.{seen[name.lower()]}"
                raise _fail(
                    f"{self.path}.{field}", f"output column {name!r} also comes from {other}"
                )
            seen[name.lower()] = field

    def _binds(self, table: FeatureTableSpec) -> None:
        """The whole compiled query binds (a last guard against compiler bugs)."""
        from featureops.features.compiler import compile_table

        try:
            self.binder.describe(compile_table(table, self.sources))
        except BindError as exc:
            raise _fail(self.path, f"compiled SQL does not bind: {exc}") from exc
