"""``params.yaml: sources``: each raw source's files, schema, read options and id checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from featureops.config.errors import ConfigError

ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}

# DuckDB integer types (canonical names): ids of these types can carry a min/max check.
INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "INT",
        "INT1",
        "INT2",
        "INT4",
        "INT8",
        "SHORT",
        "LONG",
        "SIGNED",
    }
)
STRING_TYPES = frozenset({"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _char(value: Any, key: str) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise ConfigError(f"params.yaml: {key} must be one character (got {value!r})")
    return value


@dataclass(frozen=True)
class ReadOptions:
    """How a CSV source's files are read (``sources.<name>.read``); every field optional."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    nulls: tuple[str, ...] = ("",)  # strings read as null ("nulls": a bare `null:` is YAML null)
    encoding: str = "utf-8"  # utf-8 | utf-16 | latin-1
    header: bool = True  # False: no header line, columns in declared order
    timestamp_format: str | None = None  # strptime format for TIMESTAMP(TZ); None = ISO 8601

    KEYS = ("delimiter", "quote", "escape", "nulls", "encoding", "header", "timestamp_format")

    @classmethod
    def from_params(cls, source: str, raw: Any) -> ReadOptions:
        """Parse ``sources.<source>.read``; raise ConfigError naming the offending key."""
        prefix = f"sources.{source}.read"
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError(f"params.yaml: {prefix} must be a mapping of read options")
        unknown = [k for k in raw if k not in cls.KEYS]
        if unknown:
            raise ConfigError(
                f"params.yaml: {prefix}.{unknown[0]} is not a read option "
                f"(known: {', '.join(cls.KEYS)})"
            )
        out: dict[str, Any] = {}
        for key in ("delimiter", "quote", "escape"):
            if key in raw:
                out[key] = _char(raw[key], f"{prefix}.{key}")
        if "quote" in out and "escape" not in raw:
            out["escape"] = out["quote"]  # quotes escape themselves ("") unless told otherwise
        if "nulls" in raw:
            nulls = raw["nulls"]
            if (
                not isinstance(nulls, list)
                or not nulls
                or not all(isinstance(v, str) for v in nulls)
            ):
                raise ConfigError(
                    f"params.yaml: {prefix}.nulls must be a non-empty list of strings, e.g. "
                    f"['', 'NA'] (got {nulls!r})"
                )
            out["nulls"] = tuple(nulls)
        if "encoding" in raw:
            enc = raw["encoding"]
            canonical = (
                ENCODINGS.get(enc.lower().replace("_", "-")) if isinstance(enc, str) else None
            )
            if canonical is None:
                raise ConfigError(
                    f"params.yaml: {prefix}.encoding must be utf-8, utf-16 or latin-1 (got {enc!r})"
                )
            out["encoding"] = canonical
        if "header" in raw:
            if not isinstance(raw["header"], bool):
                raise ConfigError(
                    f"params.yaml: {prefix}.header must be true or false (got {raw['header']!r})"
                )
            out["header"] = raw["header"]
        if raw.get("timestamp_format") is not None:
            fmt = raw["timestamp_format"]
            if not isinstance(fmt, str) or "%" not in fmt:
                raise ConfigError(
                    f"params.yaml: {prefix}.timestamp_format must be a strptime format such as "
                    f"'%d/%m/%Y %H:%M', or null for ISO 8601 (got {fmt!r})"
                )
            out["timestamp_format"] = fmt
        options = cls(**out)
        if options.delimiter in (options.quote, options.escape):
            raise ConfigError(
                f"params.yaml: {prefix}.delimiter must differ from read.quote and read.escape"
            )
        return options


@dataclass(frozen=True)
class IdCheck:
    """``sources.<name>.checks.ids.<column>``: a range for integer ids, a regex for string ids."""

    column: str
    min: int | None = None
    max: int | None = None
    pattern: str | None = None  # searched (re.search): anchor it, e.g. '^[A-Z]{3}$'

    KEYS = ("min", "max", "pattern")

    @classmethod
    def from_params(cls, source: str, column: str, raw: Any, declared: str) -> IdCheck:
        prefix = f"sources.{source}.checks.ids.{column}"
        if not isinstance(raw, dict) or not raw:
            raise ConfigError(
                f"params.yaml: {prefix} must be a mapping with min, max and/or pattern"
            )
        unknown = [k for k in raw if k not in cls.KEYS]
        if unknown:
            raise ConfigError(
                f"params.yaml: {prefix}.{unknown[0]} is not an id check (known: min, max, pattern)"
            )
        base = declared.split("(")[0].strip().upper()
        for key in ("min", "max"):
            if raw.get(key) is None:
                continue
            if not _is_int(raw[key]):
                raise ConfigError(
                    f"params.yaml: {prefix}.{key} must be an integer (got {raw[key]!r})"
                )
            if base not in INTEGER_TYPES:
                raise ConfigError(
                    f"params.yaml: {prefix}.{key}: a range applies to integer ids; "
                    f"{column} is {declared}"
                )
        lo, hi, pattern = raw.get("min"), raw.get("max"), raw.get("pattern")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"params.yaml: {prefix}: min {lo} is above max {hi}")
        if pattern is not None:
            if not isinstance(pattern, str):
                raise ConfigError(f"params.yaml: {prefix}.pattern must be a string (regex)")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"params.yaml: {prefix}.pattern is not a regex: {exc}") from exc
            if base not in STRING_TYPES:
                raise ConfigError(
                    f"params.yaml: {prefix}.pattern applies to string ids; {column} is {declared}"
                )
        if lo is None and hi is None and pattern is None:
            raise ConfigError(f"params.yaml: {prefix} must set min, max and/or pattern")
        return cls(column=column, min=lo, max=hi, pattern=pattern)


def _share(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"params.yaml: {key} must be a number in [0, 1] (got {value!r})")
    return float(value)


def parse_id_checks(
    source: str, columns: dict[str, str], checks: dict[str, Any]
) -> tuple[IdCheck, ...]:
    """``sources.<source>.checks.ids`` as typed checks; raise ConfigError naming the key."""
    raw = checks.get("ids")
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: sources.{source}.checks.ids must map columns to checks")
    out = []
    ranges = checks.get("ranges") or {}
    for column, rule in raw.items():
        if column not in columns:
            raise ConfigError(
                f"params.yaml: sources.{source}.checks.ids.{column}: not a declared column"
            )
        check = IdCheck.from_params(source, column, rule, str(columns[column]))
        if (check.min is not None or check.max is not None) and column in ranges:
            raise ConfigError(
                f"params.yaml: sources.{source}.checks.ids.{column}: the column also has "
                f"checks.ranges; declare its range in one place"
            )
        out.append(check)
    return tuple(out)


DEFAULT_MAX_BAD_ROW_SHARE = 0.5


@dataclass(frozen=True)
class SourceSpec:
    """One raw source: where its drops are, their schema, how to read them and their checks."""

    name: str
    glob: str
    columns: dict[str, str]
    keys: tuple[str, ...]
    timestamp: str
    format: str = "csv"
    created: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    read: ReadOptions = ReadOptions()
    # Ingest stops when more than this share of one file's rows cannot be parsed.
    max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE
    # Parsed from ``checks.ids`` when not given.
    ids: tuple[IdCheck, ...] = ()

    def __post_init__(self) -> None:
        if not self.ids and (self.checks or {}).get("ids") is not None:
            object.__setattr__(self, "ids", parse_id_checks(self.name, self.columns, self.checks))

    @classmethod
    def from_params(
        cls,
        name: str,
        raw: dict[str, Any],
        default_max_bad_row_share: float = DEFAULT_MAX_BAD_ROW_SHARE,
    ) -> SourceSpec:
        if not isinstance(raw, dict):
            raise ConfigError(f"params.yaml: sources.{name} must be a mapping")
        for key in ("glob", "columns", "keys", "timestamp"):
            if key not in raw:
                raise ConfigError(f"params.yaml: sources.{name}.{key} is required")
        keys = raw["keys"]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"params.yaml: sources.{name}.keys must be a list of column names")
        if not isinstance(raw["columns"], dict) or not raw["columns"]:
            raise ConfigError(f"params.yaml: sources.{name}.columns must map names to types")
        checks = raw.get("checks") or {}
        if not isinstance(checks, dict):
            raise ConfigError(f"params.yaml: sources.{name}.checks must be a mapping")
        share = default_max_bad_row_share
        if raw.get("max_bad_row_share") is not None:
            share = _share(raw["max_bad_row_share"], f"sources.{name}.max_bad_row_share")
        spec = cls(
            name=name,
            glob=raw["glob"],
            columns=dict(raw["columns"]),
            keys=tuple(keys),
            timestamp=raw["timestamp"],
            format=raw.get("format", "csv"),
            created=dict(raw.get("created") or {}),
            checks=dict(checks),
            read=ReadOptions.from_params(name, raw.get("read")),
            max_bad_row_share=share,
            ids=parse_id_checks(name, dict(raw["columns"]), checks),
        )
        for col in (*spec.keys, spec.timestamp):
            if col not in spec.columns:
                raise ConfigError(f"params.yaml: sources.{name}: column {col!r} not in columns")
        if spec.format not in ("csv", "parquet"):
            raise ConfigError(f"params.yaml: sources.{name}.format must be csv or parquet")
        if spec.format == "parquet":
            csv_only = [k for k in (raw.get("read") or {}) if k != "timestamp_format"]
            if csv_only:
                raise ConfigError(
                    f"params.yaml: sources.{name}.read.{csv_only[0]} applies to csv sources only"
                )
        return spec


def source_specs(params: dict[str, Any], *, for_ingest: bool = False) -> dict[str, SourceSpec]:
    """All configured sources, by name, in the order declared.

    With ``for_ingest``, ``sources.<name>.max_bad_row_share`` defaults to
    ``ingest.max_bad_row_share`` (0.5); other stages do not read the ``ingest`` section.
    """
    sources = params.get("sources")
    if not sources:
        raise ConfigError("params.yaml: no sources configured")
    if not isinstance(sources, dict):
        raise ConfigError("params.yaml: sources must map source names to their settings")
    default = DEFAULT_MAX_BAD_ROW_SHARE
    ingest = (params.get("ingest") or {}) if for_ingest else {}
    if ingest.get("max_bad_row_share") is not None:
        default = _share(ingest["max_bad_row_share"], "ingest.max_bad_row_share")
    return {
        name: SourceSpec.from_params(name, raw, default_max_bad_row_share=default)
        for name, raw in sources.items()
    }
