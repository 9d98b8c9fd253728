"""Validation on real Great Expectations 1.x: each defect ends in quarantine with its reason.

One GE context is shared by the module (``validator``); each test writes a tiny interim
Parquet file into its own temp dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from featureops.config import source_specs
from featureops.ingest import arrow_schema
from featureops.io import write_parquet
from featureops.validation import (
    BatchValidationError,
    SourceValidation,
    Validator,
    parse_reference_time,
    run_validate,
    validate_source,
)
from tests.conftest import REPO_ROOT, load_repo_params, write_params

pytestmark = pytest.mark.integration

SPECS = source_specs(load_repo_params())
NOW = datetime(2026, 6, 1, tzinfo=UTC)
T0 = pd.Timestamp("2026-01-01", tz="UTC")
FILE = "sensors/sensors_2026-01-01.csv"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(progress_bars=False)


def sensors(n: int = 20) -> pd.DataFrame:
    """Clean hourly readings of one machine, known a day after the first reading."""
    return pd.DataFrame(
        {
            "machine_id": pd.array([1] * n, dtype="int64"),
            "timestamp": [T0 + pd.Timedelta(hours=i) for i in range(n)],
            "temperature": 70.0,
            "vibration": 3.0,
            "pressure": 120.0,
            "rpm": 1500.0,
            "created": T0 + pd.Timedelta(days=2),
            "source_file": FILE,
        }
    )


def machines() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "machine_id": [1, 2, 3],
            "model": ["A100", "B200", "C300"],
            "location": ["plant-north", "plant-south", "plant-north"],
            "install_date": [T0, T0, T0],
            "created": [T0, T0, T0],
            "source_file": "machines/machines.csv",
        }
    )


def run(
    validator: Validator,
    tmp_path: Path,
    df: pd.DataFrame,
    source: str = "sensors",
    share: float = 0.5,
) -> SourceValidation:
    file = tmp_path / f"{source}.parquet"
    write_parquet(df, file)
    return validate_source(validator, SPECS[source], file, share, NOW)


def set_value(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    if value is None and column == "machine_id":
        df[column] = df[column].astype("Int64")  # a BIGINT with a null stays an integer column
    df.loc[row, column] = value
    return df


def assert_reconciles(result: SourceValidation) -> None:
    m = result.metrics
    assert m["rows_in"] == m["accepted"] + m["quarantined"]
    assert result.accepted.num_rows == m["accepted"] and len(result.quarantined) == m["quarantined"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("temperature", None, "expect_column_values_to_not_be_null(temperature): value is null"),
        ("machine_id", None, "expect_column_values_to_not_be_null(machine_id): value is null"),
        (
            "vibration",
            -3.5,
            "expect_column_values_to_be_between(vibration): value -3.5 outside [0.0, 50.0]",
        ),
        (
            "temperature",
            999.0,
            "expect_column_values_to_be_between(temperature): value 999.0 outside",
        ),
        (
            "timestamp",
            pd.Timestamp("2027-01-01", tz="UTC"),
            "expect_column_values_to_be_between(timestamp): value 2027-01-01T00:00:00+00:00 "
            "after the reference time",
        ),
        (
            "created",
            T0 - pd.Timedelta(days=1),
            "expect_column_pair_values_a_to_be_greater_than_b(created, timestamp): timestamp "
            "2026-01-01T03:00:00+00:00 after created 2025-12-31T00:00:00+00:00",
        ),
    ],
    ids=["null", "null-bigint", "below-range", "above-range", "future", "before-created"],
)
def test_row_defect_is_quarantined_with_its_expectation(
    validator: Validator, tmp_path: Path, column: str, value: object, reason: str
) -> None:
    df = set_value(sensors(), 3, column, value)
    result = run(validator, tmp_path, df)
    q = result.quarantined
    assert len(q) == 1
    row = q.iloc[0]
    assert row["reason"] == reason or row["reason"].startswith(reason)
    assert (row["source"], row["stage"], row["file"]) == ("sensors", "validate", FILE)
    assert pd.isna(row["line"])
    record = json.loads(row["record"])
    assert record["timestamp"].startswith(df.loc[3, "timestamp"].strftime("%Y-%m-%dT%H"))
    assert "source_file" not in record
    assert result.accepted.num_rows == 19
    assert_reconciles(result)


def test_category_outside_the_set_is_quarantined(validator: Validator, tmp_path: Path) -> None:
    df = machines()
    df.loc[1, "model"] = "Z999"
    result = run(validator, tmp_path, df, "machines")
    assert list(result.quarantined["reason"]) == [
        "expect_column_values_to_be_in_set(model): value 'Z999' not in ['A100', 'B200', 'C300']"
    ]
    assert json.loads(result.quarantined["record"].iloc[0])["machine_id"] == 2


def test_id_checks_quarantine_out_of_range_and_unmatched_ids(
    validator: Validator, tmp_path: Path
) -> None:
    params = load_repo_params()
    checks = params["sources"]["machines"].setdefault("checks", {})
    checks["ids"] = {
        "machine_id": {"min": 1, "max": 2},
        "location": {"pattern": "^plant-(?:north|south)$"},
    }
    spec = source_specs(params)["machines"]
    df = machines()
    df.loc[0, "location"] = "Plant North"
    file = tmp_path / "machines.parquet"
    write_parquet(df, file)
    result = validate_source(validator, spec, file, 1.0, NOW)
    assert list(result.quarantined["reason"]) == [
        "expect_column_values_to_match_regex(location): value 'Plant North' does not match "
        "'^plant-(?:north|south)$'",
        "expect_column_values_to_be_between(machine_id): value 3 outside [1, 2]",
    ]
    assert result.accepted.column("machine_id").to_pylist() == [2]
    assert_reconciles(result)


def test_duplicate_single_key_quarantines_every_conflicting_row(
    validator: Validator, tmp_path: Path
) -> None:
    df = machines()
    df.loc[2, "machine_id"] = 1
    result = run(validator, tmp_path, df, "machines", share=1.0)
    assert len(result.quarantined) == 2
    assert set(result.quarantined["reason"]) == {
        "expect_column_values_to_be_unique(machine_id): duplicate key (1)"
    }
    assert result.accepted.column("machine_id").to_pylist() == [2]


def test_duplicate_compound_key_quarantines_every_conflicting_row(
    validator: Validator, tmp_path: Path
) -> None:
    df = sensors()
    df.loc[5, "timestamp"] = df.loc[4, "timestamp"]
    df.loc[5, "temperature"] = 71.0  # conflicting values: neither can be picked
    result = run(validator, tmp_path, df)
    q = result.quarantined
    assert len(q) == 2
    assert (
        q["reason"]
        .str.startswith(
            "expect_compound_columns_to_be_unique(machine_id, timestamp): duplicate key (1, "
        )
        .all()
    )
    assert sorted(json.loads(r)["temperature"] for r in q["record"]) == [70.0, 71.0]
    assert_reconciles(result)


def test_a_row_failing_several_checks_appears_once_with_every_reason(
    validator: Validator, tmp_path: Path
) -> None:
    df = sensors()
    df.loc[2, "vibration"] = -1.0
    df.loc[2, "temperature"] = 500.0
    df.loc[7, "rpm"] = None
    result = run(validator, tmp_path, df)
    q = result.quarantined
    assert len(q) == 2
    reasons = q["reason"].iloc[0].split("; ")
    assert sorted(r.split(":")[0] for r in reasons) == [
        "expect_column_values_to_be_between(temperature)",
        "expect_column_values_to_be_between(vibration)",
    ]
    assert q["reason"].iloc[1] == "expect_column_values_to_not_be_null(rpm): value is null"
    exp = result.metrics["expectations"]
    assert exp["expect_column_values_to_be_between(vibration)"] == {
        "success": False,
        "unexpected": 1,
    }
    assert exp["expect_column_values_to_be_between(pressure)"] == {"success": True, "unexpected": 0}
    assert result.metrics["quarantined"] == 2 and result.metrics["bad_row_share"] == 0.1
    assert_reconciles(result)


def test_good_rows_pass_untouched(validator: Validator, tmp_path: Path) -> None:
    df = sensors()
    df.loc[4, "pressure"] = -5.0
    result = run(validator, tmp_path, df)
    written = pq.read_table(tmp_path / "sensors.parquet")
    assert result.accepted.schema.equals(written.schema)
    expected = written.to_pandas().drop(index=4).reset_index(drop=True)
    pd.testing.assert_frame_equal(result.accepted.to_pandas(), expected)
    assert result.metrics["success"] is False


def test_clean_batch_quarantines_nothing(validator: Validator, tmp_path: Path) -> None:
    result = run(validator, tmp_path, sensors())
    assert result.quarantined.empty and list(result.quarantined.columns) == [
        "source",
        "stage",
        "file",
        "line",
        "reason",
        "record",
    ]
    assert result.metrics["success"] is True and result.metrics["accepted"] == 20


def test_missing_column_stops_naming_file_and_check(validator: Validator, tmp_path: Path) -> None:
    with pytest.raises(BatchValidationError) as err:
        run(validator, tmp_path, sensors().drop(columns="rpm"))
    message = str(err.value)
    assert "source 'sensors'" in message
    assert str(tmp_path / "sensors.parquet") in message
    assert "check expect_column_to_exist(rpm) failed" in message


def test_wrong_type_stops_the_batch(validator: Validator, tmp_path: Path) -> None:
    with pytest.raises(
        BatchValidationError,
        match=r"check expect_column_values_to_be_of_type\(rpm\) failed: declared float64",
    ):
        run(validator, tmp_path, sensors().assign(rpm="fast"))


def test_timestamp_without_zone_is_a_wrong_type(validator: Validator, tmp_path: Path) -> None:
    df = sensors().assign(timestamp=lambda d: d["timestamp"].dt.tz_localize(None))
    file = tmp_path / "naive.parquet"
    df.to_parquet(file)  # not write_parquet: it would make the column UTC
    with pytest.raises(
        BatchValidationError,
        match=r"check expect_column_values_to_be_of_type\(timestamp\) failed: declared Timestamp",
    ):
        validate_source(validator, SPECS["sensors"], file, 0.5, NOW)


def test_too_many_bad_rows_stops_the_batch(validator: Validator, tmp_path: Path) -> None:
    df = sensors()
    df.loc[:4, "vibration"] = -1.0
    with pytest.raises(
        BatchValidationError,
        match=r"sensors\.parquet: check bad row share failed: 5 of 20 rows \(25\.0%\)",
    ):
        run(validator, tmp_path, df, share=0.1)
    assert run(validator, tmp_path, df, share=0.25).metrics["quarantined"] == 5  # at the limit


def test_empty_batch_fails_unless_the_source_allows_it(
    validator: Validator, tmp_path: Path
) -> None:
    with pytest.raises(BatchValidationError, match="check non-empty batch failed: 0 rows"):
        run(validator, tmp_path, sensors().iloc[:0])
    file = tmp_path / "failures.parquet"
    write_parquet(arrow_schema(SPECS["failures"]).empty_table(), file)
    result = validate_source(validator, SPECS["failures"], file, 0.05, NOW)
    assert result.accepted.num_rows == 0 and result.metrics["rows_in"] == 0


def test_reference_time_parsing() -> None:
    assert parse_reference_time("2026-06-01T00:00:00Z") == NOW
    assert parse_reference_time("2026-06-01") == NOW  # naive means UTC
    assert parse_reference_time(datetime(2026, 6, 1, 2, tzinfo=UTC)).hour == 2
    now = datetime.now(UTC)
    assert abs((parse_reference_time(None) - now).total_seconds()) < 5


# ---- the whole stage: outputs, Data Docs, and the DVC entry point -------------------------


def project(tmp_path: Path, sensor_rows: pd.DataFrame) -> tuple[dict, Path]:
    """A params.yaml with paths in ``tmp_path`` and interim files for every source."""
    params = load_repo_params()
    params["validate"]["reference_time"] = NOW.isoformat()
    interim = tmp_path / params["paths"]["interim"]
    for name, spec in source_specs(params).items():
        if name == "sensors":
            write_parquet(sensor_rows, interim / "sensors.parquet")
        elif name == "machines":
            write_parquet(machines(), interim / "machines.parquet")
        else:
            write_parquet(arrow_schema(spec).empty_table(), interim / f"{name}.parquet")
    return params, write_params(tmp_path, params)


def test_stage_writes_every_output_and_data_docs(tmp_path: Path) -> None:
    df = sensors()
    df.loc[3, "vibration"] = 99.0
    params, _ = project(tmp_path, df)
    summary = run_validate(params, root=tmp_path, progress_bars=False)
    p = {k: tmp_path / v for k, v in params["paths"].items()}
    assert pd.read_parquet(p["validated"] / "sensors.parquet").shape == (19, 8)
    q = pd.read_parquet(p["quarantine"] / "validate" / "sensors.parquet")
    assert q["reason"].str.startswith("expect_column_values_to_be_between(vibration)").all()
    metrics = json.loads((p["metrics"] / "validate.json").read_text())
    assert metrics == json.loads(json.dumps(summary, default=str))
    assert metrics["total"] == {
        "rows_in": 23,
        "accepted": 22,
        "quarantined": 1,
        "bad_row_share": round(1 / 23, 6),
    }
    for source in SPECS:
        m = metrics[source]
        assert m["rows_in"] == m["accepted"] + m["quarantined"], source
    index = p["reports"] / "data_docs" / "index.html"
    html = index.read_text()
    assert "<html" in html.lower() and "sensors" in html
    assert (p["reports"] / "data_docs" / "validations").is_dir()
    assert not [x for x in p["reports"].iterdir() if x.name.startswith(".")]  # temp dirs gone
    umask = os.umask(0)
    os.umask(umask)
    docs_mode = (p["reports"] / "data_docs").stat().st_mode & 0o777
    assert docs_mode == 0o777 & ~umask  # a folder a user opens: not mkdtemp's 0700


def test_stage_entry_fails_with_message_and_writes_nothing(tmp_path: Path) -> None:
    df = sensors()
    df.loc[:10, "vibration"] = -1.0  # 11 of 20 bad: above max_bad_row_share
    params, params_path = project(tmp_path, df)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.validate", "--params", params_path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "validate failed: source 'sensors'" in proc.stderr
    assert "interim/sensors.parquet: check bad row share failed: 11 of 20 rows" in proc.stderr
    assert "Calculating Metrics" not in proc.stderr
    for key in ("validated", "quarantine", "metrics", "reports"):
        written = [f for f in (tmp_path / params["paths"][key]).rglob("*") if f.is_file()]
        assert not written, (key, written)  # (an empty staging parent may remain)
