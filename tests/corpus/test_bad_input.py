"""The bad-input corpus: every case ends in quarantine with a reason, or in one clear stop.

Each case writes its drop into ``tmp_path`` and runs the real ingest (and, for cases about a
check, the real validate) through the library; the cases marked ``stage`` also run
``python -m pipelines.ingest --params ...`` in a subprocess to prove no traceback reaches stderr.
Every ingest that finishes reconciles: rows in = accepted + quarantined.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from featureops.config import ConfigError, SourceSpec, source_specs
from featureops.ingest import IngestError, IngestResult, ingest_source
from featureops.io import write_parquet
from tests.conftest import REPO_ROOT, load_repo_params, write_params
from tests.corpus import drops as d
from tests.corpus.drops import HEADER, SOURCE, good_rows, row

pytestmark = pytest.mark.integration

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ID_RANGE = {"ids": {"machine_id": {"min": 1, "max": 1_000_000}}}


@dataclass(frozen=True)
class Case:
    """One bad input and what must come of it."""

    name: str
    build: d.Builder
    source: dict[str, Any]  # sources.readings settings
    accepted: int | None = None  # rows ingest accepts (None: stops)
    quarantined: int = 0  # rows ingest quarantines
    reasons: tuple[str, ...] = ()  # each in some ingest quarantine reason
    stop: tuple[str, ...] = ()  # each in the one-line stop message (file, setting or check)
    lines: tuple[int, ...] | None = None  # the quarantined physical lines, in order
    validate: tuple[str, ...] = ()  # each in some validate quarantine reason
    validate_quarantined: int = 0
    check: Callable[[IngestResult], None] | None = None
    naive_timezone: str = "UTC"
    stage: bool = False  # also run the DVC stage entry point in a subprocess


def src(**overrides: Any) -> dict[str, Any]:
    return d.source_params(**overrides)


def only_value(column: str, expected: Any) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        values = result.accepted.column(column).to_pylist()
        assert expected in values, values

    return check


def accepted_equals(column: str, expected: list[Any]) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert result.accepted.column(column).to_pylist() == expected

    return check


def timestamps(*iso: str) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        got = sorted(result.accepted.to_pandas()["timestamp"])
        assert got == sorted(pd.Timestamp(t) for t in iso)

    return check


def records_have_no_cr(result: IngestResult) -> None:
    assert not result.quarantined["record"].str.contains("\r").any()


HOT = "Could not convert string \"hot\" to 'DOUBLE'"
CASES = [
    Case("clean", d.csv_drop(good_rows(5)), src(), accepted=5),
    Case(
        "missing-field",
        d.csv_drop([*good_rows(2), "3,2026-01-01T02:00:00Z,70.5", *good_rows(2, 4)]),
        src(),
        accepted=4,
        quarantined=1,
        reasons=("MISSING COLUMNS",),
        lines=(4,),
    ),
    Case(
        "extra-field",
        d.csv_drop([*good_rows(3), row(4, 3, note="ok,9")]),
        src(),
        accepted=3,
        quarantined=1,
        reasons=("TOO MANY COLUMNS",),
        lines=(5,),
    ),
    Case(
        "text-in-number",
        d.csv_drop([*good_rows(3), row(4, 3, temperature="hot")]),
        src(),
        accepted=3,
        quarantined=1,
        reasons=(HOT,),
        lines=(5,),
    ),
    Case(
        "empty-values-are-null",
        d.csv_drop([row(1, temperature="", note=""), *good_rows(2, 2)]),
        src(),
        accepted=3,
        check=accepted_equals("temperature", [None, 70.5, 70.5]),
    ),
    Case(
        "na-marker-without-null-option",
        d.csv_drop([row(1, temperature="NA"), *good_rows(3, 2)]),
        src(),
        accepted=3,
        quarantined=1,
        reasons=("Could not convert string \"NA\" to 'DOUBLE'",),
        lines=(2,),
    ),
    Case(
        "na-marker-with-null-option",
        d.csv_drop([row(1, temperature="NA", note="NA"), row(2, 1, temperature="")]),
        src(read={"nulls": ["", "NA"]}),
        accepted=2,
        check=accepted_equals("note", [None, "ok"]),
    ),
    Case(
        "semicolon-delimiter",
        d.csv_drop([row(i, i, sep=";") for i in (1, 2, 3)], header=HEADER.replace(",", ";")),
        src(read={"delimiter": ";"}),
        accepted=3,
    ),
    Case(
        "semicolon-file-read-with-comma",
        d.csv_drop([row(1, sep=";")], header=HEADER.replace(",", ";")),
        src(),
        stop=(d.CSV_NAME, "does not match the declared columns", "read.delimiter is ','"),
    ),
    Case(
        "latin-1-file",
        d.csv_drop([row(1, note="café"), row(2, 1, note="Größe")], encoding="latin-1"),
        src(read={"encoding": "latin-1"}),
        accepted=2,
        check=accepted_equals("note", ["café", "Größe"]),
    ),
    Case(
        "latin-1-bytes-read-as-utf-8",
        d.csv_drop([row(1, note="café"), *good_rows(3, 2)], encoding="latin-1"),
        src(),
        accepted=3,
        quarantined=1,
        reasons=("INVALID ENCODING", "sources.readings.read.encoding is utf-8"),
        lines=(2,),
    ),
    Case(
        "utf-16-file",
        d.csv_drop(good_rows(3), encoding="utf-16"),
        src(read={"encoding": "utf-16"}),
        accepted=3,
    ),
    Case(
        "utf-16-bytes-read-as-utf-8",
        d.csv_drop(good_rows(3), encoding="utf-16"),
        src(),
        stop=(d.CSV_NAME, "UTF-16", "sources.readings.read.encoding"),
        stage=True,
    ),
    Case(
        "utf-8-bytes-read-as-utf-16",
        d.csv_drop(good_rows(3)),
        src(read={"encoding": "utf-16"}),
        stop=(d.CSV_NAME, "do not look like UTF-16", "sources.readings.read.encoding"),
    ),
    Case(
        "gzip-bytes-in-csv",
        d.gzip_drop(good_rows(3)),
        src(),
        stop=(d.CSV_NAME, "gzip"),
        stage=True,
    ),
    Case(
        "header-false",
        d.csv_drop(good_rows(3), header=None),
        src(read={"header": False}),
        accepted=3,
    ),
    Case(
        "header-false-but-file-has-a-header",
        d.csv_drop(good_rows(3)),
        src(read={"header": False}),
        accepted=3,
        quarantined=1,
        reasons=("Could not convert string \"machine_id\" to 'BIGINT'",),
        lines=(1,),
    ),
    Case(
        "custom-timestamp-format",
        d.csv_drop([row(1, timestamp="01/05/2026 13:45"), row(2, timestamp="31/12/2025 23:00")]),
        src(read={"timestamp_format": "%d/%m/%Y %H:%M"}),
        accepted=2,
        check=timestamps("2026-05-01T13:45:00Z", "2025-12-31T23:00:00Z"),
    ),
    Case(
        "iso-value-against-custom-format",
        d.csv_drop([row(1, timestamp="01/05/2026 13:45"), row(2)]),
        src(read={"timestamp_format": "%d/%m/%Y %H:%M"}),
        accepted=1,
        quarantined=1,
        reasons=("with format %d/%m/%Y %H:%M (sources.readings.read.timestamp_format)",),
        lines=(3,),
    ),
    Case(
        "ambiguous-date-with-iso-expected",
        d.csv_drop([row(1, timestamp="01/05/2026"), *good_rows(2, 2)]),
        src(),
        accepted=2,
        quarantined=1,
        reasons=("'TIMESTAMP WITH TIME ZONE'", "expected ISO 8601"),
        lines=(2,),
    ),
    Case(
        "timestamp-without-zone-uses-naive-timezone",
        d.csv_drop([row(1, timestamp="2026-01-01 12:00:00"), row(2, timestamp="2026-07-01 12:00")]),
        src(),
        accepted=2,
        naive_timezone="Europe/Berlin",
        check=timestamps("2026-01-01T11:00:00Z", "2026-07-01T10:00:00Z"),
    ),
    Case(
        "quoted-newline",
        d.csv_drop(
            [
                row(1),
                row(2, 1, note='"two\nlines"'),
                row(3, 2, temperature="hot"),
                row(4, 3, note="ok,extra"),
            ]
        ),
        src(),
        accepted=2,
        quarantined=2,
        reasons=(HOT, "TOO MANY COLUMNS"),
        lines=(5, 6),  # physical lines, after the two-line record
        check=only_value("note", "two\nlines"),
        stage=True,
    ),
    Case(
        "quoted-newline-in-a-number",
        d.csv_drop([row(1), row(2, 1, temperature='"70\n5"'), row(3, 2)]),
        src(),
        accepted=2,
        quarantined=1,
        reasons=("Could not convert string \"70\n5\" to 'DOUBLE'",),
        lines=(3,),
    ),
    Case(
        "unterminated-quote-on-the-last-line",
        d.csv_drop([*good_rows(4), row(5, 4, note='"oops')]),
        src(),
        accepted=4,
        quarantined=1,
        reasons=("unterminated quote opened on line 6",),
        lines=(6,),
        stage=True,
    ),
    Case(
        "unterminated-quote-early-swallows-the-file",
        d.csv_drop([row(1), row(2, 1, note='"oops'), *good_rows(8, 3)]),
        src(),
        stop=(d.CSV_NAME, "9 of 10 rows", "sources.readings.max_bad_row_share", "unterminated"),
    ),
    Case(
        "whitespace-only-line",
        d.csv_drop([*good_rows(2), "   ", *good_rows(2, 3)]),
        src(),
        accepted=4,
        quarantined=1,
        reasons=("blank line (whitespace only): MISSING COLUMNS",),
        lines=(4,),
    ),
    Case(
        "blank-lines-are-skipped",
        d.csv_drop([row(1), "", row(2, 1), "", "", row(3, 2, temperature="hot")]),
        src(),
        accepted=2,
        quarantined=1,
        reasons=(HOT,),
        lines=(7,),
    ),
    Case("empty-file", d.raw_drop(b""), src(), stop=(d.CSV_NAME, "empty file (0 bytes)")),
    Case("header-only-file", d.csv_drop([]), src(), accepted=0),
    Case(
        "wrong-header",
        d.csv_drop(good_rows(2), header="machine_id,temperature,timestamp,note"),
        src(),
        stop=(d.CSV_NAME, "does not match the declared columns", "sources.readings.columns"),
        stage=True,
    ),
    Case(
        "missing-file-glob",
        d.nothing,
        src(),
        stop=("no files match 'readings/*.csv'", "sources.readings.glob"),
        stage=True,
    ),
    Case(
        "bom-at-start",
        d.raw_drop(b"\xef\xbb\xbf" + d.csv_bytes(good_rows(3))),
        src(),
        accepted=3,
    ),
    Case(
        "bom-at-start-without-header",
        d.raw_drop(b"\xef\xbb\xbf" + d.csv_bytes(good_rows(3), header=None)),
        src(read={"header": False}),
        accepted=3,
    ),
    Case(
        "crlf-line-endings",
        d.csv_drop([*good_rows(2), row(3, 2, temperature="hot"), row(4, 3)], newline="\r\n"),
        src(),
        accepted=3,
        quarantined=1,
        reasons=(HOT,),
        lines=(4,),
        check=records_have_no_cr,
    ),
    Case(
        "cr-only-line-endings",
        d.csv_drop([*good_rows(2), row(3, 2, temperature="hot")], newline="\r"),
        src(),
        accepted=2,
        quarantined=1,
        reasons=(HOT,),
        lines=(4,),
    ),
    Case(
        "no-final-newline",
        d.csv_drop([*good_rows(2), row(3, 2, temperature="hot")], final_newline=False),
        src(),
        accepted=2,
        quarantined=1,
        lines=(4,),
    ),
    Case(
        "trailing-delimiter-on-every-line",
        d.csv_drop([line + "," for line in good_rows(3)], header=HEADER + ","),
        src(),
        accepted=3,
    ),
    Case(
        "duplicate-rows",
        d.csv_drop([*good_rows(2), row(1), row(1)]),
        src(),
        accepted=2,
        quarantined=2,
        reasons=("exact duplicate; first copy kept from readings/readings_2026-01-01.csv",),
    ),
    Case(
        "duplicate-keys",
        d.csv_drop([row(1, temperature="70"), row(1, temperature="71"), row(2, 1)]),
        src(),
        accepted=3,  # not exact duplicates: the unique check decides, at validate
        validate=("expect_compound_columns_to_be_unique(machine_id, timestamp): duplicate key",),
        validate_quarantined=2,
    ),
    Case(
        "id-above-range",
        d.csv_drop([row(1_000_001), *good_rows(2, 2)]),
        src(checks=ID_RANGE),
        accepted=3,
        validate=(
            "expect_column_values_to_be_between(machine_id): value 1000001 outside [1, 1000000]",
        ),
        validate_quarantined=1,
    ),
    Case(
        "id-minus-one",
        d.csv_drop([row(-1), *good_rows(2, 2)]),
        src(checks=ID_RANGE),
        accepted=3,
        validate=("value -1 outside [1, 1000000]",),
        validate_quarantined=1,
    ),
    Case(
        "id-zero",
        d.csv_drop([row(0), *good_rows(2, 2)]),
        src(checks=ID_RANGE),
        accepted=3,
        validate=("value 0 outside [1, 1000000]",),
        validate_quarantined=1,
    ),
    Case(
        "id-int64-max",
        d.csv_drop([row(2**63 - 1), *good_rows(2, 2)]),
        src(checks=ID_RANGE),
        accepted=3,
        check=only_value("machine_id", 2**63 - 1),  # parsed exactly, then out of range
        validate=(f"value {2**63 - 1} outside [1, 1000000]",),
        validate_quarantined=1,
    ),
    Case(
        "id-above-int64",
        d.csv_drop([row(2**63), *good_rows(2, 2)]),
        src(),
        accepted=2,
        quarantined=1,
        reasons=(f"\"{2**63}\" is out of range for 'BIGINT'",),
        lines=(2,),
    ),
    Case(
        "string-id-in-integer-key",
        d.csv_drop([row("M001"), *good_rows(2, 2)]),
        src(),
        accepted=2,
        quarantined=1,
        reasons=("Could not convert string \"M001\" to 'BIGINT'",),
        lines=(2,),
    ),
    Case(
        "fractional-integer-id",
        d.csv_drop([row("7.5"), row("8.0", 1), *good_rows(2, 2)]),
        src(),
        accepted=3,
        quarantined=1,
        reasons=("\"7.5\" is not an integer, cannot be read as 'BIGINT'",),
        lines=(2,),
        check=only_value("machine_id", 8),  # 8.0 is an integer
    ),
    Case(
        "string-id-against-pattern",
        d.csv_drop(["ABC,2026-01-01T00:00:00Z,70.5,ok", "AB1,2026-01-01T01:00:00Z,70.5,ok"]),
        src(
            columns={**d.COLUMNS, "machine_id": "VARCHAR"},
            checks={"ids": {"machine_id": {"pattern": "^[A-Z]{3}$"}}},
        ),
        accepted=2,
        validate=("expect_column_values_to_match_regex(machine_id): value 'AB1' does not match",),
        validate_quarantined=1,
    ),
    Case(
        "escaped-quotes-with-backslash",
        d.csv_drop([row(1, note='"say \\"hi\\""'), row(2, 1)]),
        src(read={"escape": "\\"}),
        accepted=2,
        check=only_value("note", 'say "hi"'),
    ),
    Case(
        "single-quote-as-quote",
        d.csv_drop([row(1, note="'a,b'"), row(2, 1)]),
        src(read={"quote": "'"}),
        accepted=2,
        check=only_value("note", "a,b"),
    ),
    Case(
        "960-rows-all-bad",
        d.csv_drop([row(i, i % 24, temperature="n/a") for i in range(1, 961)]),
        src(max_bad_row_share=1.0),
        stop=(d.CSV_NAME, "every row quarantined: 960 of 960 rows (100.0%)", "max_bad_row_share"),
        stage=True,
    ),
    Case(
        "bad-share-above-the-limit",
        d.csv_drop([*good_rows(7), *(row(i, temperature="hot") for i in (8, 9, 10))]),
        src(max_bad_row_share=0.2),
        stop=(d.CSV_NAME, "3 of 10 rows (30.0%)", "sources.readings.max_bad_row_share=20.0%"),
    ),
    Case(
        "bad-share-at-the-limit",
        d.csv_drop([*good_rows(8), *(row(i, temperature="hot") for i in (9, 10))]),
        src(max_bad_row_share=0.2),
        accepted=8,
        quarantined=2,
        reasons=(HOT,),
    ),
    Case(
        "second-file-bad",
        d.several(
            d.csv_drop(good_rows(2)),
            d.csv_drop(good_rows(2), name="readings/readings_2026-01-02.csv", header="a,b,c,d"),
        ),
        src(),
        stop=("readings_2026-01-02.csv", "header"),
    ),
    Case(
        "line-over-duckdb-maximum-size",
        d.csv_drop([*good_rows(3), row(4, 3, note="x" * 2_100_000)]),
        src(),
        accepted=3,
        quarantined=1,
        reasons=("LINE SIZE OVER MAXIMUM",),
        lines=(5,),
    ),
    Case(
        "carriage-return-inside-a-line",
        d.raw_drop(f"{HEADER}\n{row(1)}\r{row(2, 1)}\n{row(3, 2)}\n".encode()),
        src(),
        stop=(d.CSV_NAME, "DuckDB could not read it"),
    ),
    Case(
        "unknown-column-type",
        d.csv_drop(good_rows(2)),
        src(columns={**d.COLUMNS, "temperature": "NUMBERZ"}),
        stop=("sources.readings.columns.temperature", "'NUMBERZ' is not a DuckDB type"),
    ),
    Case(
        "bad-timestamp-format",
        d.csv_drop(good_rows(2)),
        src(read={"timestamp_format": "%Q"}),
        stop=("sources.readings.read.timestamp_format", "'%Q'"),
    ),
    Case(
        "unknown-naive-timezone",
        d.csv_drop(good_rows(2)),
        src(),
        naive_timezone="Mars/Olympus",
        stop=("ingest.naive_timezone", "Mars/Olympus"),
    ),
    Case(
        "parquet-wrong-value-types",
        d.parquet_drop(
            lambda: d.parquet_frame(
                machine_id=[1.0, 7.5, 3.0, 4.0], temperature=["70.5", "71", "hot", "72"]
            )
        ),
        src(glob="readings/*.parquet", format="parquet"),
        accepted=2,
        quarantined=2,
        reasons=("machine_id value 7.5 is not an integer (BIGINT)", "temperature value hot"),
        lines=(2, 3),
    ),
    Case(
        "parquet-wrong-column-type",
        d.parquet_drop(lambda: d.parquet_frame(timestamp=[1, 2, 3, 4])),
        src(glob="readings/*.parquet", format="parquet"),
        stop=(d.PARQUET_NAME, "every row quarantined", "column timestamp value 1 (BIGINT)"),
    ),
    Case(
        "parquet-missing-column",
        d.parquet_drop(lambda: d.parquet_frame().drop(columns="temperature")),
        src(glob="readings/*.parquet", format="parquet"),
        stop=(d.PARQUET_NAME, "lacks declared columns ['temperature']", "sources.readings.columns"),
    ),
    Case(
        "parquet-name-but-not-parquet",
        d.raw_drop(b"machine_id,timestamp\n1,2\n", name=d.PARQUET_NAME),
        src(glob="readings/*.parquet", format="parquet"),
        stop=(d.PARQUET_NAME, "not a readable Parquet file"),
    ),
    Case(
        "parquet-bytes-in-csv",
        d.parquet_drop(d.parquet_frame, name=d.CSV_NAME),
        src(),
        stop=(d.CSV_NAME, "Parquet bytes", "sources.readings.format"),
    ),
]


def spec_of(case: Case) -> SourceSpec:
    return source_specs({"sources": {SOURCE: case.source}})[SOURCE]


def assert_one_line(message: str, needles: tuple[str, ...]) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.fixture(scope="module")
def validator() -> Any:
    from featureops.validation import Validator

    return Validator(progress_bars=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    landing = tmp_path / "landing"
    case.build(landing)
    spec = spec_of(case)
    if case.stop:
        with pytest.raises(IngestError) as err:
            ingest_source(spec, landing, case.naive_timezone)
        assert_one_line(str(err.value), case.stop)
        return
    result = ingest_source(spec, landing, case.naive_timezone)
    stats, q = result.stats, result.quarantined
    assert stats["rows_in"] == stats["accepted"] + stats["quarantined"], stats
    assert (stats["accepted"], stats["quarantined"]) == (case.accepted, case.quarantined), q
    assert result.accepted.num_rows == case.accepted and len(q) == case.quarantined
    assert list(q.columns) == ["source", "stage", "file", "line", "reason", "record"]
    assert (q["stage"] == "ingest").all() and q["file"].str.startswith(f"{SOURCE}/").all()
    for needle in case.reasons:
        assert q["reason"].str.contains(needle, regex=False).any(), (needle, list(q["reason"]))
    if case.lines is not None:
        assert [int(v) for v in q["line"]] == list(case.lines)
    if case.check is not None:
        case.check(result)
    if case.validate:
        check_validate(request.getfixturevalue("validator"), spec, result, case, tmp_path)


def check_validate(
    validator: Any, spec: SourceSpec, result: IngestResult, case: Case, tmp_path: Path
) -> None:
    from featureops.validation import validate_source

    file = write_parquet(result.accepted, tmp_path / "interim" / f"{SOURCE}.parquet")
    outcome = validate_source(validator, spec, file, 1.0, NOW)
    m, q = outcome.metrics, outcome.quarantined
    assert m["rows_in"] == m["accepted"] + m["quarantined"] == case.accepted, m
    assert len(q) == case.validate_quarantined, list(q["reason"])
    for needle in case.validate:
        assert q["reason"].str.contains(needle, regex=False).any(), (needle, list(q["reason"]))


# ---- the DVC stage entry point: exit 1 with one line on stderr, never a traceback ----------


def stage_project(tmp_path: Path, case: Case) -> Path:
    params = load_repo_params()
    params["paths"] = {k: f"out/{k}" for k in params["paths"]}
    params["paths"]["landing"] = "landing"
    params["sources"] = {SOURCE: case.source}
    params.setdefault("ingest", {})["naive_timezone"] = case.naive_timezone
    case.build(tmp_path / "landing")
    return write_params(tmp_path, params)


def run_stage(tmp_path: Path, params_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", "--params", str(params_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


STAGE_CASES = [c for c in CASES if c.stage]


@pytest.mark.parametrize("case", STAGE_CASES, ids=[c.name for c in STAGE_CASES])
def test_stage_entry_point(case: Case, tmp_path: Path) -> None:
    proc = run_stage(tmp_path, stage_project(tmp_path, case))
    assert "Traceback" not in proc.stderr, proc.stderr
    metrics = tmp_path / "out" / "metrics" / "ingest.json"
    if case.stop:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("ingest failed: ")
        assert_one_line(lines[0], case.stop)
        assert not metrics.exists()  # nothing is written
        return
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(metrics.read_text())[SOURCE]
    assert stats["rows_in"] == stats["accepted"] + stats["quarantined"]
    assert (stats["accepted"], stats["quarantined"]) == (case.accepted, case.quarantined)


@pytest.mark.parametrize(
    ("read", "key"),
    [
        ({"delimeter": ";"}, "sources.readings.read.delimeter"),
        ({"header": "yes"}, "sources.readings.read.header"),
        ({"nulls": "NA"}, "sources.readings.read.nulls"),
        ({"nulls": []}, "sources.readings.read.nulls"),
        ({"encoding": "cp1252"}, "sources.readings.read.encoding"),
        ({"delimiter": ";;"}, "sources.readings.read.delimiter"),
        ({"timestamp_format": 5}, "sources.readings.read.timestamp_format"),
    ],
    ids=[
        "unknown-key",
        "header-not-bool",
        "null-not-list",
        "null-empty",
        "encoding",
        "delimiter",
        "format",
    ],
)
def test_bad_read_option_is_a_config_error_naming_the_key(read: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        source_specs({"sources": {SOURCE: src(read=read)}})


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"max_bad_row_share": 1.5}, "sources.readings.max_bad_row_share"),
        ({"checks": {"ids": {"machine_id": {"min": "1"}}}}, "checks.ids.machine_id.min"),
        ({"checks": {"ids": {"machine_id": {"pattern": "^A$"}}}}, "checks.ids.machine_id.pattern"),
        ({"checks": {"ids": {"note": {"pattern": "("}}}}, "checks.ids.note.pattern"),
        ({"checks": {"ids": {"nope": {"min": 1}}}}, "checks.ids.nope"),
        ({"checks": {"ids": {"machine_id": {"minimum": 1}}}}, "checks.ids.machine_id.minimum"),
        ({"checks": {"ids": {"machine_id": {"min": 5, "max": 1}}}}, "checks.ids.machine_id"),
        (
            {"checks": {"ids": {"temperature": {"min": 1}}}},
            "checks.ids.temperature.min",  # a range is for integer ids
        ),
        (
            {"checks": {"ranges": {"machine_id": [1, 9]}, "ids": {"machine_id": {"max": 9}}}},
            "checks.ids.machine_id",  # one range per column
        ),
    ],
    ids=[
        "share",
        "min-type",
        "pattern-on-int",
        "bad-regex",
        "unknown-column",
        "unknown-key",
        "min>max",
        "range-on-float",
        "range-twice",
    ],
)
def test_bad_source_setting_is_a_config_error_naming_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        source_specs({"sources": {SOURCE: src(**overrides)}})


def test_ingest_default_share_comes_from_the_ingest_section() -> None:
    params = {"sources": {SOURCE: src()}, "ingest": {"max_bad_row_share": 0.1}}
    assert source_specs(params, for_ingest=True)[SOURCE].max_bad_row_share == 0.1
    assert source_specs({"sources": {SOURCE: src()}})[SOURCE].max_bad_row_share == 0.5
    params["sources"][SOURCE]["max_bad_row_share"] = 0.3
    assert source_specs(params, for_ingest=True)[SOURCE].max_bad_row_share == 0.3
    with pytest.raises(ConfigError, match=r"ingest\.max_bad_row_share"):
        source_specs(
            {"sources": {SOURCE: src()}, "ingest": {"max_bad_row_share": "half"}}, for_ingest=True
        )


def test_bad_setting_stops_the_stage_with_one_line(tmp_path: Path) -> None:
    case = Case("config", d.csv_drop(good_rows(2)), src(read={"delimeter": ";"}))
    proc = run_stage(tmp_path, stage_project(tmp_path, case))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ingest failed: params.yaml: sources.readings.read.delimeter")


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30 and len(STAGE_CASES) >= 3


def test_same_drop_gives_the_same_bytes(tmp_path: Path) -> None:
    """A drop with every kind of defect still ingests deterministically."""
    lines = [
        *good_rows(20),
        row(21, temperature="hot"),
        "  ",
        row(1),
        row("7.5"),
        row(22, note='"a\nb"'),
    ]
    d.csv_drop(lines)(tmp_path)
    spec = spec_of(Case("x", d.nothing, src()))
    first = ingest_source(spec, tmp_path)
    second = ingest_source(spec, tmp_path)
    assert first.accepted.equals(second.accepted)
    pd.testing.assert_frame_equal(first.quarantined, second.quarantined)
    assert first.stats["rows_in"] == 25 == first.stats["accepted"] + first.stats["quarantined"]
