"""Labels from config: a declared table's column or a user's file; durations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from featureops.config import ConfigError, Paths
from featureops.durations import parse_duration
from featureops.io import write_parquet
from featureops.labels import LabelError, LabelSpec, label_rows
from tests.conftest import load_repo_params


def test_label_horizon_may_be_zero_but_windows_may_not() -> None:
    assert parse_duration("0h", allow_zero=True).micros == 0
    with pytest.raises(ValueError, match="bad window"):
        parse_duration("0h")
    with pytest.raises(ValueError, match="bad window"):
        parse_duration("06h", allow_zero=True)


def _params(label: dict) -> dict:
    params = load_repo_params()
    params["label"] = label
    return params


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (None, "label is required"),
        ({"table": "failure_labels"}, "label.name"),
        ({"name": "y"}, "exactly one of"),
        ({"name": "y", "table": "t", "file": {"path": "x"}}, "exactly one of"),
        ({"name": "y", "table": "nope"}, "label.table 'nope' is not in features"),
        ({"name": "y", "file": {"path": "x.csv", "keys": ["k"]}}, "label.file.timestamp"),
        ({"name": "y", "table": "failure_labels", "horizon": "soon"}, "label.horizon"),
        ({"name": "y", "table": "failure_labels", "extra": 1}, "label.extra"),
        (
            {"name": "y", "file": {"path": "elsewhere/l.csv", "keys": ["k"], "timestamp": "t"}},
            "must be under paths.labels",
        ),
    ],
)
def test_label_config_errors_name_the_key(label: dict | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LabelSpec.from_params(_params(label))


def test_label_rows_from_a_user_csv_keep_string_and_composite_keys(tmp_path: Path) -> None:
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.csv").write_text(
        "customer_id,merchant_id,decided_at,fraud\n"
        "C007,M1,2026-01-02T10:00:00Z,1\n"
        "C001,M2,2026-01-01T10:00:00+01:00,0\n"
        "C002,M1,2026-01-05T00:00:00Z,0\n"
    )
    params = _params(
        {
            "name": "is_fraud",
            "file": {
                "path": "labels/labels.csv",
                "keys": ["customer_id", "merchant_id"],
                "timestamp": "decided_at",
                "column": "fraud",
            },
            "horizon": "0h",
        }
    )
    spec = LabelSpec.from_params(params, tmp_path)
    rows = label_rows(spec, Paths.from_params(params, tmp_path), end="2026-01-03")
    assert list(rows.columns) == ["customer_id", "merchant_id", "event_timestamp", "is_fraud"]
    assert list(rows["customer_id"]) == ["C001", "C007"]  # time order; zeros kept
    assert str(rows["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert rows["event_timestamp"].iloc[0] == pd.Timestamp("2026-01-01T09:00:00Z")
    assert list(rows["is_fraud"]) == [0, 1]


def test_label_rows_from_a_table_and_clear_errors(tmp_path: Path) -> None:
    params = load_repo_params()
    paths = Paths.from_params(params, tmp_path)
    spec = LabelSpec.from_params(params, tmp_path)
    assert spec.horizon == pd.Timedelta(hours=24) and spec.name == "failure_next_24h"
    with pytest.raises(LabelError, match="run `dvc repro` first"):
        label_rows(spec, paths, ["machine_id"])
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    table = pd.DataFrame(
        {
            "machine_id": [2, 1, 1],
            "event_timestamp": [t0, t0, t0 + pd.Timedelta(hours=1)],
            "created": [t0] * 3,
            "failure_next_24h": [1, 0, 1],
        }
    )
    write_parquet(table, paths.features / "failure_labels.parquet")
    rows = label_rows(spec, paths, ["machine_id"], start=t0, end=t0 + pd.Timedelta(hours=1))
    assert rows.to_dict("list") == {
        "machine_id": [1, 2],
        "event_timestamp": [t0, t0],
        "failure_next_24h": [0, 1],
    }
    with pytest.raises(LabelError, match="no label rows"):
        label_rows(spec, paths, ["machine_id"], start="2027-01-01")
    with pytest.raises(LabelError, match=r"missing column\(s\) \['customer_id'\]"):
        label_rows(spec, paths, ["customer_id"])
