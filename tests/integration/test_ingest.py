"""Ingest on real DuckDB: schema parsing, quarantine with reasons, reconciliation, idempotency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featureops.config import SourceSpec
from featureops.ingest import IngestError, ingest_source
from tests.conftest import REPO_ROOT, write_params

HEADER = "machine_id,timestamp,temperature,vibration\n"
SPEC = SourceSpec(
    name="sensors",
    glob="sensors/*.csv",
    columns={
        "machine_id": "BIGINT",
        "timestamp": "TIMESTAMPTZ",
        "temperature": "DOUBLE",
        "vibration": "DOUBLE",
    },
    keys=("machine_id",),
    timestamp="timestamp",
    created={"filename_date": r"(\d{4}-\d{2}-\d{2})", "delay_hours": 24},
)


def drop(landing: Path, day: str, body: str) -> Path:
    path = landing / "sensors" / f"sensors_{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body)
    return path


def test_clean_rows_parse_to_declared_types_in_utc_microseconds(tmp_path: Path) -> None:
    drop(
        tmp_path,
        "2026-01-01",
        "1,2026-01-01T01:00:00Z,70.5,0.3\n2,2026-01-01T03:00:00+02:00,71,0.4\n",
    )
    result = ingest_source(SPEC, tmp_path)
    table = result.accepted
    assert table.schema.field("machine_id").type == pa.int64()
    assert table.schema.field("temperature").type == pa.float64()
    df = table.to_pandas()
    assert list(df["timestamp"]) == [
        pd.Timestamp("2026-01-01T01:00:00Z"),
        pd.Timestamp("2026-01-01T01:00:00Z"),  # +02:00 converted to UTC
    ]
    assert (df["created"] == pd.Timestamp("2026-01-02T00:00:00Z")).all()
    assert result.stats == {
        "files": 1,
        "rows_in": 2,
        "accepted": 2,
        "quarantined": 0,
        "parse_errors": 0,
        "duplicates": 0,
    }


def test_naive_timestamps_use_the_configured_zone(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "1,2026-01-01 12:00:00,70.5,0.3\n")
    df = ingest_source(SPEC, tmp_path, naive_timezone="Europe/Berlin").accepted.to_pandas()
    assert df["timestamp"].iloc[0] == pd.Timestamp("2026-01-01T11:00:00Z")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("3,2026-01-01T00:00:00Z,abc,0.3", "Could not convert string \"abc\" to 'DOUBLE'"),
        ("3,2026-01-01T00:00:00Z,70.5", "MISSING COLUMNS"),
        ("3,2026-01-01T00:00:00Z,70.5,0.3,9", "TOO MANY COLUMNS"),
        ("3,yesterday,70.5,0.3", "TIMESTAMP WITH TIME ZONE"),
        ("x3,2026-01-01T00:00:00Z,70.5,0.3", "BIGINT"),
    ],
)
def test_unparseable_line_is_quarantined_with_file_line_and_reason(
    tmp_path: Path, line: str, reason: str
) -> None:
    drop(
        tmp_path,
        "2026-01-01",
        f"1,2026-01-01T00:00:00Z,70,0.3\n{line}\n2,2026-01-01T00:00:00Z,70,0.3\n",
    )
    result = ingest_source(SPEC, tmp_path)
    q = result.quarantined
    assert len(q) == 1
    row = q.iloc[0]
    assert row["file"] == "sensors/sensors_2026-01-01.csv"
    assert row["line"] == 3  # physical line: header is line 1
    assert reason in row["reason"]
    assert row["record"] == line
    assert row["stage"] == "ingest"
    assert result.accepted.num_rows == 2
    assert result.stats["rows_in"] == result.stats["accepted"] + result.stats["quarantined"]


def test_missing_values_are_kept_as_nulls_for_validation(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "1,2026-01-01T00:00:00Z,,0.3\n")
    df = ingest_source(SPEC, tmp_path).accepted.to_pandas()
    assert len(df) == 1 and df["temperature"].isna().all()


def test_exact_duplicates_quarantined_and_earliest_copy_kept(tmp_path: Path) -> None:
    row = "1,2026-01-01T05:00:00Z,70,0.3\n"
    drop(tmp_path, "2026-01-01", row + row)
    drop(tmp_path, "2026-01-02", row + "1,2026-01-02T05:00:00Z,71,0.3\n")
    result = ingest_source(SPEC, tmp_path)
    df = result.accepted.to_pandas()
    assert len(df) == 2
    first = df[df["timestamp"] == pd.Timestamp("2026-01-01T05:00:00Z")].iloc[0]
    assert first["created"] == pd.Timestamp("2026-01-02T00:00:00Z")
    assert first["source_file"] == "sensors/sensors_2026-01-01.csv"
    q = result.quarantined
    assert len(q) == 2
    assert q["reason"].str.startswith("exact duplicate").all()
    assert result.stats["duplicates"] == 2
    assert result.stats["rows_in"] == 4 == result.stats["accepted"] + result.stats["quarantined"]


def test_same_key_different_values_is_not_an_exact_duplicate(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "1,2026-01-01T05:00:00Z,70,0.3\n1,2026-01-01T05:00:00Z,71,0.3\n")
    result = ingest_source(SPEC, tmp_path)
    assert result.accepted.num_rows == 2  # uniqueness of the key is a validation check


def test_late_row_is_known_from_the_file_it_arrived_in(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "1,2026-01-01T05:00:00Z,70,0.3\n")
    drop(tmp_path, "2026-01-03", "1,2026-01-01T06:00:00Z,70,0.3\n")
    df = ingest_source(SPEC, tmp_path).accepted.to_pandas().set_index("timestamp")
    assert df.loc[pd.Timestamp("2026-01-01T06:00:00Z"), "created"] == pd.Timestamp(
        "2026-01-04T00:00:00Z"
    )
    assert (
        df.loc[pd.Timestamp("2026-01-01T06:00:00Z"), "source_file"]
        == "sensors/sensors_2026-01-03.csv"
    )


def test_header_mismatch_stops_with_file_and_columns(tmp_path: Path) -> None:
    path = drop(tmp_path, "2026-01-01", "")
    path.write_text("machine_id,temperature,timestamp,vibration\n1,70,2026-01-01T00:00:00Z,0.3\n")
    with pytest.raises(IngestError, match=r"sensors_2026-01-01.csv: header .* does not match"):
        ingest_source(SPEC, tmp_path)


def test_no_drops_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"no files match 'sensors/\*\.csv'"):
        ingest_source(SPEC, tmp_path)


def test_parquet_drops_cast_with_declared_schema(tmp_path: Path) -> None:
    spec = SourceSpec(
        name="readings",
        glob="readings/*.parquet",
        format="parquet",
        columns={"machine_id": "BIGINT", "timestamp": "TIMESTAMPTZ", "temperature": "DOUBLE"},
        keys=("machine_id",),
        timestamp="timestamp",
        max_bad_row_share=0.9,  # 2 of the 3 rows are bad
    )
    (tmp_path / "readings").mkdir()
    pd.DataFrame(
        {
            "machine_id": ["1", "2", "z"],
            "timestamp": ["2026-01-01T00:00:00Z"] * 3,
            "temperature": ["70.5", "hot", "71"],
        }
    ).to_parquet(tmp_path / "readings" / "part-0.parquet")
    result = ingest_source(spec, tmp_path)
    assert result.accepted.num_rows == 1
    reasons = sorted(result.quarantined["reason"])
    assert "temperature value hot is not DOUBLE" in reasons[
        1
    ] or "temperature value hot" in " ".join(reasons)
    assert any("machine_id value z is not BIGINT" in r for r in reasons)
    assert set(result.quarantined["line"]) == {2, 3}


def _run_ingest_stage(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.ingest", "--params", str(root / "params.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": ""},
    )


def sensors_only_project(tmp_path: Path, repo_params: dict) -> dict:
    """Write a params.yaml whose only source is the test's sensor spec; return the params."""
    params = {
        **repo_params,
        "sources": {
            "sensors": {
                "glob": SPEC.glob,
                "keys": ["machine_id"],
                "timestamp": "timestamp",
                "created": SPEC.created,
                "columns": SPEC.columns,
            }
        },
    }
    write_params(tmp_path, params)
    return params


def test_stage_is_idempotent_and_picks_up_a_new_drop(tmp_path: Path, repo_params: dict) -> None:
    params = sensors_only_project(tmp_path, repo_params)
    landing = tmp_path / params["paths"]["landing"]
    drop(landing, "2026-01-01", "1,2026-01-01T00:00:00Z,70,0.3\n1,2026-01-01T01:00:00Z,bad,0.3\n")
    out = tmp_path / params["paths"]["interim"] / "sensors.parquet"
    quarantine = tmp_path / params["paths"]["quarantine"] / "ingest" / "sensors.parquet"

    assert _run_ingest_stage(tmp_path).returncode == 0
    first = out.read_bytes(), quarantine.read_bytes()
    assert _run_ingest_stage(tmp_path).returncode == 0
    assert (out.read_bytes(), quarantine.read_bytes()) == first

    drop(landing, "2026-01-02", "1,2026-01-02T00:00:00Z,72,0.3\n")
    assert _run_ingest_stage(tmp_path).returncode == 0
    assert pq.read_table(out).num_rows == 2
    assert pq.read_table(quarantine).num_rows == 1
    assert not list(out.parent.glob(".*.tmp"))  # no temp files left behind


def test_stage_failure_leaves_previous_outputs_intact(tmp_path: Path, repo_params: dict) -> None:
    params = sensors_only_project(tmp_path, repo_params)
    landing = tmp_path / params["paths"]["landing"]
    drop(landing, "2026-01-01", "1,2026-01-01T00:00:00Z,70,0.3\n")
    assert _run_ingest_stage(tmp_path).returncode == 0
    out = tmp_path / params["paths"]["interim"] / "sensors.parquet"
    before = out.read_bytes()
    (landing / "sensors" / "sensors_2026-01-02.csv").write_text("wrong,header\n1,2\n")
    proc = _run_ingest_stage(tmp_path)
    assert proc.returncode == 1
    assert "sensors_2026-01-02.csv: header" in proc.stderr
    assert out.read_bytes() == before


def test_drops_without_any_duplicate_or_error(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "1,2026-01-01T00:00:00Z,70,0.3\n")
    result = ingest_source(SPEC, tmp_path)
    assert result.quarantined.empty and result.accepted.num_rows == 1


def test_a_source_with_only_headers_keeps_its_declared_types(tmp_path: Path) -> None:
    drop(tmp_path, "2026-01-01", "")
    table = ingest_source(SPEC, tmp_path).accepted
    assert table.num_rows == 0
    assert table.schema.field("temperature").type == pa.float64()
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
