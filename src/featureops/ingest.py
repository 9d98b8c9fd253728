"""Ingest: parse raw drops with the declared schema, quarantine what cannot be parsed.

Each source's files are read by DuckDB with an explicit schema. Lines DuckDB cannot parse
(wrong field count, a value that does not cast to its declared type) go to quarantine with
their file, line and the parser's reason. Exact duplicates are dropped into quarantine too,
keeping the earliest-known copy. Output is deterministic: the same drops give the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from featureops.config import SourceSpec

QUARANTINE_COLUMNS = ["source", "stage", "file", "line", "reason", "record"]
CREATED = "created"
SOURCE_FILE = "source_file"


# Declared DuckDB types -> Arrow types, so even an empty source keeps its schema.
ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float32(),
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP": pa.timestamp("us"),
    "DATE": pa.date32(),
}


def arrow_schema(spec: SourceSpec) -> pa.Schema:
    """The Arrow schema of an ingested source: declared columns + created + source_file."""
    fields = [pa.field(c, ARROW_TYPES.get(t.upper(), pa.string())) for c, t in spec.columns.items()]
    fields += [pa.field(CREATED, pa.timestamp("us", tz="UTC")), pa.field(SOURCE_FILE, pa.string())]
    return pa.schema(fields)


class IngestError(RuntimeError):
    """A whole source cannot be ingested (no files, header mismatch, counts do not reconcile)."""


@dataclass
class IngestResult:
    """Parsed rows, quarantined rows and the counts that reconcile them."""

    source: str
    accepted: pa.Table
    quarantined: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def empty_quarantine() -> pd.DataFrame:
    """A quarantine frame with the shared schema and no rows."""
    return pd.DataFrame(
        {
            "source": pd.Series(dtype="string"),
            "stage": pd.Series(dtype="string"),
            "file": pd.Series(dtype="string"),
            "line": pd.Series(dtype="Int64"),
            "reason": pd.Series(dtype="string"),
            "record": pd.Series(dtype="string"),
        }
    )


def list_drops(spec: SourceSpec, landing: Path) -> list[Path]:
    """The source's files under ``landing``, sorted; raise IngestError if there are none."""
    files = sorted(p for p in Path(landing).glob(spec.glob) if p.is_file())
    if not files:
        raise IngestError(
            f"source {spec.name!r}: no files match {spec.glob!r} under {Path(landing).resolve()}"
        )
    return files


def _connect(naive_timezone: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{naive_timezone}'")
    return con


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _check_csv_header(path: Path, spec: SourceSpec) -> int:
    """Check the header names the declared columns in order; return the count of data lines."""
    with path.open("rb") as fh:
        header = fh.readline().decode("utf-8-sig").strip()
        data_lines = sum(1 for line in fh if line.strip())
    names = [c.strip().strip('"') for c in header.split(",")]
    if names != list(spec.columns):
        raise IngestError(
            f"source {spec.name!r}: {path}: header {names} does not match the declared "
            f"columns {list(spec.columns)} (sources.{spec.name}.columns in params.yaml)"
        )
    return data_lines


def _read_csv(
    con: duckdb.DuckDBPyConnection, files: list[Path], spec: SourceSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse CSV files; return (parsed rows with ``filename``, rejected lines)."""
    columns = (
        "{" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in spec.columns.items()) + "}"
    )
    file_list = "[" + ", ".join(_sql_str(str(f)) for f in files) + "]"
    parsed = con.sql(
        f"""SELECT * FROM read_csv({file_list}, columns = {columns}, header = true,
                auto_detect = false, delim = ',', quote = '"', escape = '"',
                store_rejects = true, filename = true, null_padding = false)"""
    ).df()
    rejects = con.sql(
        """SELECT s.file_path AS file, e.line::BIGINT AS line,
                  string_agg(e.error_type || ': ' || e.error_message, '; '
                             ORDER BY e.column_idx) AS reason,
                  any_value(e.csv_line) AS record
           FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
           GROUP BY ALL ORDER BY file, line"""
    ).df()
    return parsed, rejects


def _read_parquet(
    con: duckdb.DuckDBPyConnection, files: list[Path], spec: SourceSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read Parquet drops, casting each declared column; rows that fail a cast are rejected."""
    file_list = "[" + ", ".join(_sql_str(str(f)) for f in files) + "]"
    raw = con.sql(
        f"SELECT * FROM read_parquet({file_list}, filename = true, file_row_number = true,"
        " union_by_name = true)"
    )
    missing = [c for c in spec.columns if c not in raw.columns]
    if missing:
        raise IngestError(f"source {spec.name!r}: Parquet drops lack declared columns {missing}")
    casts = ", ".join(f'TRY_CAST("{c}" AS {t}) AS "{c}"' for c, t in spec.columns.items())
    failed = " || ".join(
        f"""CASE WHEN "{c}" IS NOT NULL AND TRY_CAST("{c}" AS {t}) IS NULL
            THEN 'CAST: column {c} value ' || CAST("{c}" AS VARCHAR) || ' is not {t}; '
            ELSE '' END"""
        for c, t in spec.columns.items()
    )
    con.register("raw_drop", raw)
    table = con.sql(
        f"""SELECT {casts}, filename, file_row_number + 1 AS line,
                   rtrim({failed}, '; ') AS reason, to_json(raw_drop) AS record
            FROM raw_drop"""
    ).df()
    bad = table["reason"] != ""
    rejects = table.loc[bad, ["filename", "line", "reason", "record"]].rename(
        columns={"filename": "file"}
    )
    parsed = table.loc[~bad, [*spec.columns, "filename"]]
    return parsed, rejects


def _created_column(parsed: pd.DataFrame, spec: SourceSpec) -> pd.Series:
    """When each row became known, per ``sources.<name>.created``."""
    rule = spec.created
    if "filename_date" in rule:
        pattern = re.compile(rule["filename_date"])
        delay = pd.Timedelta(hours=float(rule.get("delay_hours", 0)))

        def file_time(name: str) -> pd.Timestamp:
            match = pattern.search(Path(name).name)
            if not match:
                raise IngestError(
                    f"source {spec.name!r}: file {name} has no date matching "
                    f"{rule['filename_date']!r} (sources.{spec.name}.created)"
                )
            return pd.Timestamp(match.group(1), tz="UTC") + delay

        times = {name: file_time(name) for name in parsed["filename"].unique()}
        return parsed["filename"].map(times).astype("datetime64[us, UTC]")
    column = rule.get("column", spec.timestamp)
    if column not in parsed:
        raise IngestError(f"source {spec.name!r}: created column {column!r} not declared")
    return pd.to_datetime(parsed[column], utc=True).astype("datetime64[us, UTC]")


def _relative(path: str, landing: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(landing).resolve()).as_posix()
    except ValueError:
        return str(path)


def _relative_column(paths: pd.Series, landing: Path) -> pd.Series:
    """:func:`_relative` of every row's file, resolving each distinct file once."""
    names = {p: _relative(p, landing) for p in pd.unique(paths)}
    return paths.map(names).astype(object)


def _split_duplicates(df: pd.DataFrame, spec: SourceSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the earliest-known copy of each exact duplicate (all declared columns equal)."""
    cols = list(spec.columns)
    ordered = df.sort_values([CREATED, SOURCE_FILE], kind="stable")
    dup = ordered.duplicated(subset=cols, keep="first")
    first_file = ordered.groupby(cols, dropna=False, sort=False)[SOURCE_FILE].transform("first")
    dups = ordered.loc[dup]
    reasons = [f"exact duplicate; first copy kept from {f}" for f in first_file.loc[dup]]
    records = dups[cols].to_json(orient="records", lines=True, date_format="iso").splitlines()
    quarantine = pd.DataFrame(
        {
            "source": spec.name,
            "stage": "ingest",
            "file": dups[SOURCE_FILE].to_numpy(),
            "line": pd.array([pd.NA] * len(dups), dtype="Int64"),
            "reason": reasons,
            "record": records if len(dups) else [],
        }
    )
    return ordered.loc[~dup], quarantine


def ingest_source(spec: SourceSpec, landing: Path, naive_timezone: str = "UTC") -> IngestResult:
    """Parse every drop of one source; return accepted rows, quarantine and reconciled counts."""
    landing = Path(landing)
    files = list_drops(spec, landing)
    lines_in = sum(_check_csv_header(f, spec) for f in files) if spec.format == "csv" else None
    con = _connect(naive_timezone)
    try:
        reader = _read_csv if spec.format == "csv" else _read_parquet
        parsed, rejects = reader(con, files, spec)
    finally:
        con.close()
    if lines_in is None:
        lines_in = len(parsed) + len(rejects)
    if len(parsed) + len(rejects) != lines_in:
        raise IngestError(
            f"source {spec.name!r}: {lines_in} data lines read but {len(parsed)} parsed + "
            f"{len(rejects)} rejected; check quoting or multi-line fields in the drops"
        )
    parsed[SOURCE_FILE] = _relative_column(parsed.pop("filename"), landing)
    parsed = parsed.assign(filename=parsed[SOURCE_FILE])  # created may read the file name
    parsed[CREATED] = _created_column(parsed, spec)
    parsed = parsed.drop(columns="filename")
    kept, duplicates = _split_duplicates(parsed, spec)
    parse_quarantine = pd.DataFrame(
        {
            "source": spec.name,
            "stage": "ingest",
            "file": _relative_column(rejects["file"], landing).to_numpy(),
            "line": pd.array(rejects["line"], dtype="Int64"),
            "reason": rejects["reason"].to_numpy(),
            "record": rejects["record"].to_numpy(),
        }
    )
    quarantined = pd.concat(
        [q for q in (parse_quarantine, duplicates) if len(q)] or [empty_quarantine()],
        ignore_index=True,
    ).astype(empty_quarantine().dtypes.to_dict())
    quarantined = quarantined.sort_values(["file", "line", "record"], kind="stable")
    kept = kept.sort_values(
        [*spec.keys, spec.timestamp, CREATED, *spec.columns], kind="stable", na_position="last"
    ).reset_index(drop=True)
    accepted = pa.Table.from_pandas(
        kept[[*spec.columns, CREATED, SOURCE_FILE]], schema=arrow_schema(spec), preserve_index=False
    )
    stats = {
        "files": len(files),
        "rows_in": int(lines_in),
        "accepted": len(kept),
        "quarantined": len(quarantined),
        "parse_errors": len(parse_quarantine),
        "duplicates": len(duplicates),
    }
    if stats["rows_in"] != stats["accepted"] + stats["quarantined"]:
        raise IngestError(f"source {spec.name!r}: counts do not reconcile: {stats}")
    return IngestResult(spec.name, accepted, quarantined.reset_index(drop=True), stats)
