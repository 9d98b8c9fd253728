"""Ingest: parse raw drops with the declared schema, quarantine what cannot be parsed.

Each CSV drop is read by DuckDB as text with the source's read options
(``sources.<name>.read``: delimiter, quote, escape, null markers, encoding, header), then every
value is cast to its declared type in SQL, so each failure keeps its file, physical line, raw
record and a reason. A line with the wrong field count, an unterminated quote or bytes that do
not decode is quarantined by the parser; a value that does not cast (text in a number, ``7.5``
in an integer column, a timestamp not in ISO 8601 or ``read.timestamp_format``) by the cast.
Exact duplicates are dropped into quarantine too, keeping the earliest-known copy.

Every drop is split into physical lines and records independently of DuckDB, and the two must
agree: rows in = accepted + quarantined, per file. A file whose quarantined share is above
``sources.<name>.max_bad_row_share`` (or whose rows all fail), and a file that cannot be read as
text at all (empty, compressed, in another encoding, a wrong header), stop the run with one line
naming the file and the setting to check. Output is deterministic: the same drops give the same
bytes.
"""

from __future__ import annotations

import csv
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from featureops.config.sources import INTEGER_TYPES, STRING_TYPES, SourceSpec
from featureops.progress import track

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

_TIMESTAMP_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"})
_FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})
_INTEGRAL = r"[+-]?[0-9]+(\.0*)?"  # 7 and 7.0 are integers; 7.5 and 1e3 are not
_BINARY_MAGIC = {
    b"\x1f\x8b": "gzip-compressed bytes, not CSV text (decompress the drop first)",
    b"PK\x03\x04": "zip archive bytes, not CSV text (extract the drop first)",
    b"PAR1": "Parquet bytes, not CSV text (check sources.{name}.format and glob)",
}
_VALUE_CHARS = 120  # longest raw value quoted in a reason


def arrow_schema(spec: SourceSpec) -> pa.Schema:
    """The Arrow schema of an ingested source: declared columns + created + source_file."""
    fields = [pa.field(c, ARROW_TYPES.get(t.upper(), pa.string())) for c, t in spec.columns.items()]
    fields += [pa.field(CREATED, pa.timestamp("us", tz="UTC")), pa.field(SOURCE_FILE, pa.string())]
    return pa.schema(fields)


class IngestError(RuntimeError):
    """A whole source cannot be ingested: the message is one line naming the file and setting."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: object) -> str:
    """``text`` on one line: line breaks (e.g. in DuckDB messages) become `` | ``."""
    parts = [p.strip() for p in str(text).splitlines() if p.strip()]
    return " | ".join(parts)


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
    try:
        files = sorted(p for p in Path(landing).glob(spec.glob) if p.is_file())
    except (ValueError, NotImplementedError, OSError) as exc:
        raise IngestError(
            f"source {spec.name!r}: sources.{spec.name}.glob {spec.glob!r} cannot be used under "
            f"{Path(landing).resolve()}: {exc}"
        ) from exc
    if not files:
        raise IngestError(
            f"source {spec.name!r}: no files match {spec.glob!r} under {Path(landing).resolve()} "
            f"(sources.{spec.name}.glob, paths.landing)"
        )
    return files


def _connect(naive_timezone: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        con.execute(f"SET TimeZone = {_sql_str(naive_timezone)}")
    except duckdb.Error as exc:
        con.close()
        raise IngestError(
            f"ingest.naive_timezone: {naive_timezone!r} is not a time zone DuckDB knows ({exc})"
        ) from exc
    return con


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stop(spec: SourceSpec, path: Path, problem: str) -> IngestError:
    return IngestError(f"source {spec.name!r}: file {path}: {problem}")


# --------------------------------------------------------------------------- types and casts


def canonical_types(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> dict[str, str]:
    """Each declared column's DuckDB type name (``TIMESTAMPTZ`` -> ``TIMESTAMP WITH TIME ZONE``)."""
    out = {}
    for col, declared in spec.columns.items():
        try:
            out[col] = con.sql(f"SELECT typeof(CAST(NULL AS {declared}))").fetchall()[0][0]
        except duckdb.Error as exc:
            raise IngestError(
                f"source {spec.name!r}: sources.{spec.name}.columns.{col}: {declared!r} is not a "
                f"DuckDB type ({exc})"
            ) from exc
    if spec.read.timestamp_format is not None:
        try:
            con.sql(f"SELECT try_strptime('', {_sql_str(spec.read.timestamp_format)})").fetchall()
        except duckdb.Error as exc:
            raise IngestError(
                f"source {spec.name!r}: sources.{spec.name}.read.timestamp_format "
                f"{spec.read.timestamp_format!r} is not a strptime format ({exc})"
            ) from exc
    return out


def _is_integer(type_name: str) -> bool:
    return type_name in INTEGER_TYPES


def _text_cast(
    spec: SourceSpec, col: str, v: str, type_name: str, csv_style: bool = True
) -> tuple[str, str]:
    """(value, reason) SQL for the text ``v`` read as ``type_name``; reason NULL when it casts.

    CSV reasons keep DuckDB's CSV reader wording (``CAST: Error when converting column "c".
    Could not convert string "x" to 'DOUBLE'``); Parquet ones ``CAST: column c value x is not T``.
    """
    shown = f"left({v}, {_VALUE_CHARS})"
    quoted = f"""'"' || {shown} || '"'"""

    def fail(what: str) -> str:
        """SQL for a reason; ``what`` is 'convert', 'fraction' or 'range'."""
        if csv_style:
            head = _sql_str(f"CAST: Error when converting column {_ident(col)}. ")
            tail = {
                "convert": f"'Could not convert string ' || {quoted} || ' to ''{type_name}'''",
                "fraction": f"{quoted} || ' is not an integer, cannot be read as ''{type_name}'''",
                "range": f"{quoted} || ' is out of range for ''{type_name}'''",
            }[what]
            return f"{head} || {tail}"
        tail = {
            "convert": f"' is not {type_name}'",
            "fraction": f"' is not an integer ({type_name})'",
            "range": f"' is out of range for {type_name}'",
        }[what]
        return f"{_sql_str(f'CAST: column {col} value ')} || {shown} || {tail}"

    if type_name in STRING_TYPES:
        return v, "NULL"
    if _is_integer(type_name):
        digits = f"regexp_replace(trim({v}), '[.]0*$', '')"
        integral = f"regexp_full_match(trim({v}), '{_INTEGRAL}')"
        value = f"CASE WHEN {integral} THEN TRY_CAST({digits} AS {type_name}) END"
        reason = f"""CASE WHEN {v} IS NULL THEN NULL
            WHEN NOT {integral} THEN CASE WHEN TRY_CAST({v} AS DOUBLE) IS NOT NULL
                THEN {fail("fraction")} ELSE {fail("convert")} END
            WHEN TRY_CAST({digits} AS {type_name}) IS NULL THEN {fail("range")}
            END"""
        return value, reason
    if type_name in _TIMESTAMP_TYPES:
        fmt = spec.read.timestamp_format
        key = f"sources.{spec.name}.read.timestamp_format"
        if fmt is not None:
            value = f"TRY_CAST(try_strptime(trim({v}), {_sql_str(fmt)}) AS {type_name})"
            hint = f" with format {fmt} ({key})"
        else:
            value = f"TRY_CAST({v} AS {type_name})"
            hint = f" (expected ISO 8601 such as 2026-01-31 13:45:00+00; or set {key})"
        reason = (
            f"CASE WHEN {v} IS NOT NULL AND {value} IS NULL "
            f"THEN {fail('convert')} || {_sql_str(hint)} END"
        )
        return value, reason
    value = f"TRY_CAST({v} AS {type_name})"
    return value, f"CASE WHEN {v} IS NOT NULL AND {value} IS NULL THEN {fail('convert')} END"


def _typed_cast(col: str, c: str, source_type: str, type_name: str) -> tuple[str, str]:
    """(value, reason) SQL for a typed (Parquet) value ``c`` of ``source_type``."""
    shown = f"left(CAST({c} AS VARCHAR), {_VALUE_CHARS})"
    head = _sql_str(f"CAST: column {col} value ")
    if source_type == type_name:
        return c, "NULL"
    if _is_integer(type_name) and (
        source_type in _FLOAT_TYPES or source_type.startswith("DECIMAL")
    ):
        value = f"CASE WHEN {c} = trunc({c}) THEN TRY_CAST({c} AS {type_name}) END"
        reason = f"""CASE WHEN {c} IS NOT NULL AND {value} IS NULL THEN
            {head} || {shown} || CASE WHEN {c} <> trunc({c})
                THEN ' is not an integer ({type_name})' ELSE ' is out of range for {type_name}' END
            END"""
        return value, reason
    value = f"TRY_CAST({c} AS {type_name})"
    reason = (
        f"CASE WHEN {c} IS NOT NULL AND {value} IS NULL THEN "
        f"{head} || {shown} || {_sql_str(f' ({source_type}) is not {type_name}')} END"
    )
    return value, reason


def _reason_sql(reasons: list[str]) -> str:
    parts = [r for r in reasons if r != "NULL"]
    return f"NULLIF(concat_ws('; ', {', '.join(parts)}), '')" if parts else "NULL"


# --------------------------------------------------------------------------- CSV: lines, records


@dataclass
class _FileParse:
    """One drop parsed: typed rows (+ ``filename``; None when read with other files), rejected
    rows as (file, line, reason, record) in line order, and its rows in."""

    parsed: pd.DataFrame | None
    rejects: list[tuple[str, int, str, str]]
    rows_in: int


class _Lines:
    """The physical lines of UTF-8 bytes as offsets (LF, CRLF or CR-only); text on demand."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        arr = np.frombuffer(buf, dtype=np.uint8)
        newline = 10 if b"\n" in buf or b"\r" not in buf else 13
        breaks = np.flatnonzero(arr == newline)
        starts = np.concatenate([[0], breaks + 1]).astype(np.int64)
        ends = np.concatenate([breaks, [len(buf)]]).astype(np.int64)
        if starts[-1] == len(buf):  # a terminator at the end opens no line
            starts, ends = starts[:-1], ends[:-1]
        if newline == 10 and len(ends):  # CRLF: the CR is not part of the line
            ends = ends - ((ends > starts) & (arr[np.maximum(ends - 1, 0)] == 13))
        self.starts, self.ends = starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    def blank(self) -> np.ndarray:
        return self.ends == self.starts

    def text(self, first: Any, last: Any = None) -> str:
        """Lines ``first`` to ``last`` (1-based, inclusive) joined by LF."""
        last = first if last is None else last
        return "\n".join(
            self.buf[self.starts[i] : self.ends[i]].decode("utf-8", errors="replace")
            for i in range(int(first) - 1, int(last))
        )


@dataclass
class _CsvFile:
    """A CSV drop checked and split into records before DuckDB reads it."""

    path: Path  # the drop
    read_path: Path  # what DuckDB reads: the drop, or a UTF-8 copy (up to any cut)
    lines: _Lines
    starts: np.ndarray  # first physical line of each record (1-based)
    ends: np.ndarray  # last physical line of each record
    cut: int  # line where an unterminated quote opens (0: none); DuckDB reads the lines before


def _sniff(spec: SourceSpec, path: Path, data: bytes) -> None:
    """Stop on bytes that are not CSV text in the configured encoding."""
    key = f"sources.{spec.name}.read.encoding"
    if not data:
        raise _stop(spec, path, "empty file (0 bytes); re-deliver it or remove it")
    for magic, problem in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise _stop(spec, path, problem.format(name=spec.name))
    head = data[:4096]
    utf16_bom = head[:2] in (b"\xff\xfe", b"\xfe\xff")
    looks_utf16 = utf16_bom or head.count(0) > len(head) // 5
    encoding = spec.read.encoding
    if encoding != "utf-16" and looks_utf16:
        raise _stop(
            spec,
            path,
            f"bytes look like UTF-16 (byte-order mark or NUL bytes), not {encoding} "
            f"({key} is {encoding})",
        )
    if encoding == "utf-16" and not looks_utf16:
        raise _stop(
            spec, path, f"bytes do not look like UTF-16 (no byte-order mark, no NUL bytes) ({key})"
        )


def _utf8(spec: SourceSpec, path: Path, data: bytes) -> tuple[bytes, bool]:
    """The drop as UTF-8 bytes without a BOM, and whether they differ from the file's."""
    encoding = spec.read.encoding
    if encoding == "utf-8":  # invalid bytes stay: DuckDB quarantines their lines
        return data.removeprefix(b"\xef\xbb\xbf"), False
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _stop(
            spec, path, f"not valid {encoding}: {exc} (sources.{spec.name}.read.encoding)"
        ) from exc
    return text.removeprefix("\ufeff").encode("utf-8"), True


def _csv_dialect(spec: SourceSpec) -> dict[str, Any]:
    opts = spec.read
    same = opts.escape == opts.quote
    return {
        "delimiter": opts.delimiter,
        "quotechar": opts.quote,
        "escapechar": None if same else opts.escape,
        "doublequote": same,
    }


@contextmanager
def _csv_field_limit() -> Iterator[None]:
    previous = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _check_header(spec: SourceSpec, path: Path, lines: _Lines) -> None:
    """The first line must name the declared columns in order (a trailing delimiter is allowed)."""
    header = lines.text(1) if len(lines) else ""
    if not header.strip():
        raise _stop(spec, path, "no header line (the first line is empty)")
    with _csv_field_limit():
        names = next(csv.reader([header], **_csv_dialect(spec)), [])
    names = [c.strip() for c in names]
    declared = list(spec.columns)
    if len(names) == len(declared) + 1 and names[-1] == "":
        names = names[:-1]
    if names != declared:
        hint = ""
        if len(names) == 1 and any(d in names[0] for d in ",;\t|" if d != spec.read.delimiter):
            hint = f"; sources.{spec.name}.read.delimiter is {spec.read.delimiter!r}"
        raise _stop(
            spec,
            path,
            f"header {names} does not match the declared columns {declared} "
            f"(sources.{spec.name}.columns in params.yaml{hint})",
        )


def _records(spec: SourceSpec, lines: _Lines) -> tuple[np.ndarray, np.ndarray, int]:
    """Records as physical line ranges (1-based, inclusive), blank lines skipped, and the line
    where an unterminated quote opens (its record would run to the end of the file) or 0.
    """
    first = 2 if spec.read.header else 1
    if spec.read.quote.encode() not in lines.buf:  # no quoting: a record per non-blank line
        starts = np.flatnonzero(~lines.blank()[first - 1 :]).astype(np.int64) + first
        return starts, starts.copy(), 0
    starts_l, ends_l = [], []
    dialect = _csv_dialect(spec)
    with _csv_field_limit():
        texts = (lines.text(i) + "\n" for i in range(first, len(lines) + 1))
        reader = csv.reader(texts, **dialect)
        prev = 0
        for row in reader:
            start, prev = prev + 1, reader.line_num
            if row:
                starts_l.append(start + first - 1)
                ends_l.append(prev + first - 1)
        cut = 0
        if starts_l and ends_l[-1] == len(lines):
            last = lines.text(starts_l[-1], len(lines)) + "\n"
            try:
                list(csv.reader(last.splitlines(keepends=True), strict=True, **dialect))
            except csv.Error as exc:
                if "unexpected end of data" in str(exc):
                    cut = starts_l.pop()
                    ends_l.pop()
    return np.array(starts_l, dtype=np.int64), np.array(ends_l, dtype=np.int64), cut


def _prepare_csv(spec: SourceSpec, path: Path, tmp: Path, n: int) -> _CsvFile:
    """Check one drop's bytes and header and split it into records; stop on a bad file."""
    data = path.read_bytes()
    _sniff(spec, path, data)
    buf, transcoded = _utf8(spec, path, data)
    del data
    if not buf or buf.isspace():
        raise _stop(spec, path, "no data: the file holds only blank lines")
    lines = _Lines(buf)
    if spec.read.header:
        _check_header(spec, path, lines)
    starts, ends, cut = _records(spec, lines)
    read_path = path
    if cut or transcoded:  # DuckDB reads UTF-8, and only the lines before an unclosed quote
        read_path = tmp / f"{n}.csv"
        read_path.write_bytes(buf[: lines.starts[cut - 1]] if cut else buf)
    return _CsvFile(path, read_path, lines, starts, ends, cut)


def _duckdb_csv(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    types: dict[str, str],
    files: list[_CsvFile],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """DuckDB reads every file as text and casts it, in one scan.

    Returns (rows that cast: declared columns + ``_file`` (index into ``files``); rows with a
    value that does not cast: ``_file``, ``_ord`` (position in the scan), ``_reason``; per file
    ``_file``, ``lo``, ``hi``, ``n``: first and last position and row count; rejected records:
    ``_file``, ``line``, ``reason``).
    """
    opts = spec.read
    cols = list(spec.columns)
    text_columns = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in cols) + "}"
    nulls = "[" + ", ".join(_sql_str(v) for v in opts.nulls) + "]"
    alias = ", ".join(f'"_c{i}"' for i in range(len(cols))) + ', "_path", "_ord"'
    values, reasons = [], []
    for i, col in enumerate(cols):
        value, reason = _text_cast(spec, col, f'r."_c{i}"', types[col])
        values.append(f"{value} AS {_ident(col)}")
        reasons.append(reason)
    file_list = "[" + ", ".join(_sql_str(str(f.read_path)) for f in files) + "]"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _drop AS
        SELECT {", ".join(values)}, (list_position({file_list}, r."_path") - 1)::INTEGER AS "_file",
               r."_ord", {_reason_sql(reasons)} AS "_reason"
        FROM read_csv({file_list}, columns = {text_columns}, header = {opts.header},
            auto_detect = false, delim = {_sql_str(opts.delimiter)},
            quote = {_sql_str(opts.quote)}, escape = {_sql_str(opts.escape)},
            nullstr = {nulls}, encoding = 'utf-8', null_padding = false, filename = true,
            store_rejects = true) WITH ORDINALITY AS r({alias})"""
    )
    select = ", ".join(_ident(c) for c in cols)
    good = con.sql(f'SELECT {select}, "_file" FROM _drop WHERE "_reason" IS NULL').df()
    bad = con.sql(
        'SELECT "_file", "_ord", "_reason" FROM _drop WHERE "_reason" IS NOT NULL ORDER BY "_ord"'
    ).df()
    runs = con.sql(
        'SELECT "_file", min("_ord") AS lo, max("_ord") AS hi, count(*) AS n FROM _drop GROUP BY 1'
    ).df()
    rejects = con.sql(  # one message per kind of error (a short line has one per column)
        f"""WITH errors AS (
               SELECT (list_position({file_list}, s.file_path) - 1)::INTEGER AS "_file",
                      e.line::BIGINT AS line, e.error_type,
                      arg_min(coalesce(e.error_message, ''), coalesce(e.column_idx, 0)) AS message,
                      min(coalesce(e.column_idx, 0)) AS column_idx
               FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
               GROUP BY ALL)
           SELECT "_file", line,
                  string_agg(error_type || ': ' || message, '; ' ORDER BY column_idx) AS reason
           FROM errors GROUP BY ALL ORDER BY 1, 2"""
    ).df()
    con.execute("DROP TABLE _drop")
    return good, bad, runs, rejects


def _explain(reason: str, record: str, spec: SourceSpec) -> str:
    if not record.strip():
        return f"blank line (whitespace only): {reason}"
    if reason.startswith("INVALID ENCODING"):
        return f"{reason} (sources.{spec.name}.read.encoding is {spec.read.encoding})"
    return reason


def _align(
    spec: SourceSpec,
    f: _CsvFile,
    n_rows: int,
    first_ord: int,
    bad: tuple[np.ndarray, list[str]],
    rej: tuple[np.ndarray, list[str]],
) -> _FileParse:
    """Give DuckDB's rows and rejects of one file their physical lines and raw records.

    ``bad``: scan positions and reasons of the rows with a value that does not cast; ``rej``:
    DuckDB line numbers and reasons of the rejected records. DuckDB numbers a record by its
    first line minus the extra lines of earlier multi-line records; every other record is a
    row, in order. The file's records must all be accounted for.
    """
    starts, ends, lines = f.starts, f.ends, f.lines
    reject_lines, reject_reasons = rej
    extra = np.cumsum(ends - starts) - (ends - starts)
    duck_lines = starts - extra
    pos = np.searchsorted(duck_lines, reject_lines)
    found = pos < len(starts)
    found[found] = duck_lines[pos[found]] == reject_lines[found]
    if not found.all() or len(starts) != n_rows + len(reject_lines):
        raise _stop(
            spec,
            f.path,
            f"could not reconcile records: {len(starts)} records in the file, DuckDB read "
            f"{n_rows} rows and rejected {len(reject_lines)} (check sources.{spec.name}.read: "
            "quote, escape, delimiter)",
        )
    name = str(f.path)
    out = []
    for i, reason in zip(pos, reject_reasons, strict=True):
        record = lines.text(starts[i], ends[i])
        out.append((name, int(starts[i]), _explain(reason, record, spec), record))
    if len(bad[0]):
        rejected = np.zeros(len(starts), dtype=bool)
        rejected[pos] = True
        failed_idx = np.flatnonzero(~rejected)[bad[0] - first_ord]
        for i, reason in zip(failed_idx, bad[1], strict=True):
            out.append((name, int(starts[i]), reason, lines.text(starts[i], ends[i])))
    rows_in = len(starts)
    if f.cut:
        tail = [i for i in range(f.cut, len(lines) + 1) if not lines.blank()[i - 1]]
        span = f"lines {f.cut}-{len(lines)}" if len(lines) > f.cut else f"line {f.cut}"
        reason = (
            f"UNQUOTED VALUE: unterminated quote opened on line {f.cut} runs to the end of the "
            f"file; {span} quarantined (sources.{spec.name}.read.quote)"
        )
        out += [(name, i, reason, lines.text(i)) for i in tail]
        rows_in += len(tail)
    out.sort(key=lambda r: r[1])
    return _FileParse(None, out, rows_in)


def _failing_file(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    types: dict[str, str],
    files: list[_CsvFile],
    error: duckdb.Error,
) -> IngestError:
    """The stop for a scan DuckDB could not finish, naming the first file it fails on alone."""
    for f in files:
        try:
            _duckdb_csv(con, spec, types, [f])
        except duckdb.Error as exc:
            return _stop(spec, f.path, f"DuckDB could not read it: {exc}")
    return IngestError(f"source {spec.name!r}: DuckDB could not read the drops: {error}")


def _read_csv_files(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    types: dict[str, str],
    paths: list[Path],
    tmp: Path,
) -> tuple[pd.DataFrame, list[_FileParse]]:
    """Parse every CSV drop: (typed rows with ``filename``, per file rejects and rows in)."""
    files = []
    for n, path in enumerate(track(paths, f"ingest {spec.name}: reading drops", len(paths))):
        try:
            files.append(_prepare_csv(spec, path, tmp, n))
        except (csv.Error, UnicodeError, OSError) as exc:
            raise _stop(spec, path, f"cannot be parsed: {exc}") from exc
    try:
        good, bad, runs, rejects = _duckdb_csv(con, spec, types, files)
    except duckdb.Error as exc:
        raise _failing_file(con, spec, types, files, exc) from exc
    spans = {
        int(k): (int(lo), int(hi), int(count))
        for k, lo, hi, count in zip(runs["_file"], runs["lo"], runs["hi"], runs["n"], strict=True)
    }
    bad_at = bad.groupby("_file").indices
    rej_at = rejects.groupby("_file").indices
    bad_ords, bad_reasons = bad["_ord"].to_numpy(dtype=np.int64), bad["_reason"].to_numpy()
    rej_lines, rej_reasons = rejects["line"].to_numpy(dtype=np.int64), rejects["reason"].to_numpy()
    none = np.array([], dtype=np.int64)
    results = []
    for n, f in enumerate(files):
        lo, hi, count = spans.get(n, (1, 0, 0))
        if hi - lo + 1 != count:  # each file's rows are one run of the scan
            raise _stop(spec, f.path, "DuckDB returned its rows out of order")
        b, r = bad_at.get(n, none), rej_at.get(n, none)
        results.append(
            _align(
                spec,
                f,
                count,
                lo,
                (bad_ords[b], list(bad_reasons[b])),
                (rej_lines[r], list(rej_reasons[r])),
            )
        )
    codes = good.pop("_file").to_numpy()
    good["filename"] = pd.Categorical.from_codes(codes, categories=[str(f.path) for f in files])
    return good, results


# --------------------------------------------------------------------------- Parquet


def _read_parquet_file(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, types: dict[str, str], path: Path
) -> _FileParse:
    """Read one Parquet drop, casting each declared column; rows that fail a cast are rejected."""
    src = f"read_parquet({_sql_str(str(path))}, file_row_number = true)"
    try:
        have = {name: str(t) for name, t in zip(*_describe(con, src), strict=True)}
    except duckdb.Error as exc:
        raise _stop(spec, path, f"not a readable Parquet file: {exc}") from exc
    missing = [c for c in spec.columns if c not in have]
    if missing:
        raise _stop(
            spec,
            path,
            f"lacks declared columns {missing} (has {sorted(have)}; sources.{spec.name}.columns)",
        )
    values, reasons = [], []
    for col in spec.columns:
        c = f"raw.{_ident(col)}"
        if have[col] in STRING_TYPES:
            value, reason = _text_cast(spec, col, c, types[col], csv_style=False)
        else:
            value, reason = _typed_cast(col, c, have[col], types[col])
        values.append(f"{value} AS {_ident(col)}")
        reasons.append(reason)
    record = "to_json({" + ", ".join(f"{_sql_str(c)}: raw.{_ident(c)}" for c in have) + "})"
    try:
        table = con.sql(
            f"""SELECT {", ".join(values)}, raw.file_row_number + 1 AS line,
                       {_reason_sql(reasons)} AS reason, {record}::VARCHAR AS record
                FROM {src} AS raw ORDER BY raw.file_row_number"""
        ).df()
    except duckdb.Error as exc:
        raise _stop(spec, path, f"DuckDB could not read it: {exc}") from exc
    bad = table["reason"].notna()
    rejects = [
        (str(path), int(line), reason, record)
        for line, reason, record in table.loc[bad, ["line", "reason", "record"]].itertuples(
            index=False
        )
    ]
    parsed = table.loc[~bad, list(spec.columns)].copy()
    parsed["filename"] = str(path)
    return _FileParse(parsed, rejects, len(table))


def _describe(con: duckdb.DuckDBPyConnection, src: str) -> tuple[list[str], list[str]]:
    rel = con.sql(f"SELECT * EXCLUDE (file_row_number) FROM {src}")
    return list(rel.columns), [str(t) for t in rel.types]


# --------------------------------------------------------------------------- the source


def _check_share(spec: SourceSpec, path: Path, result: _FileParse) -> None:
    """Stop when too many of one file's rows failed (or all of them did)."""
    bad, rows = len(result.rejects), result.rows_in
    if not rows or not bad:
        return
    share, limit = bad / rows, spec.max_bad_row_share
    if share <= limit and bad < rows:
        return
    _, line, reason, _ = result.rejects[0]
    key = f"sources.{spec.name}.max_bad_row_share"
    if bad == rows:
        what = (
            f"every row quarantined: {bad} of {rows} rows (100.0%) could not be parsed; a file "
            f"with no good row stops the run whatever {key} ({limit:.1%})"
        )
    else:
        what = (
            f"too many rows quarantined: {bad} of {rows} rows ({share:.1%}) could not be parsed, "
            f"above {key}={limit:.1%} (raise it, or ingest.max_bad_row_share for every source)"
        )
    raise _stop(spec, path, f"{what}; first: line {line}: {reason}")


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
            try:
                return pd.Timestamp(match.group(1), tz="UTC") + delay
            except (ValueError, IndexError) as exc:
                raise IngestError(
                    f"source {spec.name!r}: file {name}: {match.group(0)!r} is not a date "
                    f"(sources.{spec.name}.created.filename_date): {exc}"
                ) from exc

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


def _parse_files(
    spec: SourceSpec, files: list[Path], naive_timezone: str
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Parse every file; stop at the first one that cannot be read or has too many bad rows.

    Returns (rows with ``filename``, rejects with file/line/reason/record, rows in).
    """
    con = _connect(naive_timezone)
    try:
        types = canonical_types(con, spec)
        with tempfile.TemporaryDirectory(prefix="featureops-ingest-") as tmp:
            if spec.format == "csv":
                parsed, results = _read_csv_files(con, spec, types, files, Path(tmp))
            else:
                results = [
                    _read_parquet_file(con, spec, types, path)
                    for path in track(files, f"ingest {spec.name}: reading drops", len(files))
                ]
                parsed = pd.concat([r.parsed for r in results], ignore_index=True)
    finally:
        con.close()
    for path, result in zip(files, results, strict=True):
        _check_share(spec, path, result)
    rejects = pd.DataFrame(
        [row for r in results for row in r.rejects], columns=["file", "line", "reason", "record"]
    )
    return parsed, rejects, sum(r.rows_in for r in results)


def ingest_source(spec: SourceSpec, landing: Path, naive_timezone: str = "UTC") -> IngestResult:
    """Parse every drop of one source; return accepted rows, quarantine and reconciled counts."""
    landing = Path(landing)
    files = list_drops(spec, landing)
    parsed, rejects, rows_in = _parse_files(spec, files, naive_timezone)
    if len(parsed) + len(rejects) != rows_in:
        raise IngestError(
            f"source {spec.name!r}: {rows_in} rows read but {len(parsed)} parsed + "
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
    try:
        accepted = pa.Table.from_pandas(
            kept[[*spec.columns, CREATED, SOURCE_FILE]],
            schema=arrow_schema(spec),
            preserve_index=False,
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise IngestError(
            f"source {spec.name!r}: parsed rows do not fit the declared schema "
            f"(sources.{spec.name}.columns): {exc}"
        ) from exc
    stats = {
        "files": len(files),
        "rows_in": int(rows_in),
        "accepted": len(kept),
        "quarantined": len(quarantined),
        "parse_errors": len(parse_quarantine),
        "duplicates": len(duplicates),
    }
    if stats["rows_in"] != stats["accepted"] + stats["quarantined"]:
        raise IngestError(f"source {spec.name!r}: counts do not reconcile: {stats}")
    return IngestResult(spec.name, accepted, quarantined.reset_index(drop=True), stats)
