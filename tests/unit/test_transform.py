"""Transform: rolling windows, history and labels are point-in-time safe; stats fit on train only."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from featureops.config import source_specs
from featureops.io import write_parquet
from featureops.normalize import apply_stats, load_stats
from featureops.transform import (
    TransformConfig,
    build_features,
    connect,
    fit_normalization,
    write_features,
)
from pipelines.transform import main as transform_main
from tests.conftest import load_repo_params

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def h(x: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=x)


@pytest.fixture
def params() -> dict:
    p = copy.deepcopy(load_repo_params())
    p["transform"].update(
        rolling_windows_hours=[3],
        failure_lookback_days=1,
        label_horizon_hours=2,
        train_window={"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T05:00:00Z"},
    )
    return p


def write_sources(root: Path, sensors: pd.DataFrame, maintenance=None, failures=None) -> Path:
    sensors = sensors.copy()
    for col in ("temperature", "vibration", "pressure", "rpm"):
        if col not in sensors:
            sensors[col] = 1.0
    sensors["created"] = sensors.get("created", sensors["timestamp"])
    sensors["source_file"] = "sensors/x.csv"
    write_parquet(sensors, root / "sensors.parquet")
    empty = pd.DataFrame(
        {
            "machine_id": pd.Series(dtype="int64"),
            "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
            "created": pd.Series(dtype="datetime64[us, UTC]"),
        }
    )
    m = maintenance if maintenance is not None else empty.assign(action=pd.Series(dtype="str"))
    f = failures if failures is not None else empty.assign(component=pd.Series(dtype="str"))
    for df in (m, f):
        if "created" not in df:
            df["created"] = df["timestamp"]
    write_parquet(m, root / "maintenance.parquet")
    write_parquet(f, root / "failures.parquet")
    write_parquet(
        pd.DataFrame(
            {
                "machine_id": [1, 2],
                "model": ["A100", "B200"],
                "location": ["x", "y"],
                "install_date": [T0 - pd.Timedelta(days=9)] * 2,
                "created": [T0 - pd.Timedelta(days=9)] * 2,
                "source_file": ["machines/machines.csv"] * 2,
            }
        ),
        root / "machines.parquet",
    )
    return root


def build(params: dict, root: Path) -> dict[str, pd.DataFrame]:
    tables, _ = build_features(params, root, source_specs(params))
    return tables


def readings(temps: list[float], hours_: list[float] | None = None) -> pd.DataFrame:
    hours_ = hours_ if hours_ is not None else list(range(len(temps)))
    return pd.DataFrame(
        {"machine_id": 1, "timestamp": [h(x) for x in hours_], "temperature": temps}
    )


def test_rolling_window_excludes_the_reading_exactly_w_old(params: dict, tmp_path: Path) -> None:
    write_sources(tmp_path, readings([1.0, 2.0, 4.0, 8.0]))
    s = build(params, tmp_path)["sensor_features"]
    # at hour 3 the 3 h window is (0, 3]: hours 1, 2, 3
    assert s["temperature_mean_3h"].tolist() == [1.0, 1.5, 7 / 3, 14 / 3]
    assert s["temperature_max_3h"].tolist() == [1.0, 2.0, 4.0, 8.0]


def test_rolling_features_do_not_see_the_future(params: dict, tmp_path: Path) -> None:
    write_sources(tmp_path, readings([1.0, 2.0, 4.0, 8.0]))
    before = build(params, tmp_path)["sensor_features"]
    write_sources(tmp_path, readings([1.0, 2.0, 4.0, 999.0]))
    after = build(params, tmp_path)["sensor_features"]
    cols = ["temperature_mean_3h", "temperature_max_3h"]
    pd.testing.assert_frame_equal(before[cols].iloc[:3], after[cols].iloc[:3])
    assert after["temperature_max_3h"].iloc[3] == 999.0


def test_gaps_shrink_the_window_instead_of_counting_rows(params: dict, tmp_path: Path) -> None:
    write_sources(tmp_path, readings([1.0, 2.0, 10.0], hours_=[0, 1, 10]))
    s = build(params, tmp_path)["sensor_features"]
    assert s["temperature_mean_3h"].iloc[2] == 10.0


def test_created_of_an_aggregate_reflects_a_late_reading(params: dict, tmp_path: Path) -> None:
    df = readings([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    df["created"] = [h(x + 1) for x in range(6)]
    df.loc[1, "created"] = h(20)  # hour 1 arrived late
    write_sources(tmp_path, df)
    s = build(params, tmp_path)["sensor_features"]
    # hour-1 reading is inside the window of hours 1..3 only
    assert s["created"].tolist() == [h(1), h(20), h(20), h(20), h(5), h(6)]


def test_history_features_and_their_boundaries(params: dict, tmp_path: Path) -> None:
    maint = pd.DataFrame({"machine_id": [1], "timestamp": [h(2)], "action": ["inspection"]})
    fails = pd.DataFrame(
        {"machine_id": [1, 1], "timestamp": [h(1), h(3)], "component": ["seal", "motor"]}
    )
    write_sources(tmp_path, readings([1.0] * 30), maint, fails)
    hist = build(params, tmp_path)["machine_history"].set_index("event_timestamp")
    assert pd.isna(hist.loc[h(1), "hours_since_maintenance"])
    assert hist.loc[h(2), "hours_since_maintenance"] == 0.0
    assert hist.loc[h(5), "hours_since_maintenance"] == 3.0
    # 1-day lookback is (ts - 24h, ts]
    assert hist.loc[h(0), "failures_last_1d"] == 0
    assert hist.loc[h(1), "failures_last_1d"] == 1
    assert hist.loc[h(3), "failures_last_1d"] == 2
    assert hist.loc[h(24), "failures_last_1d"] == 2
    assert hist.loc[h(25), "failures_last_1d"] == 1  # hour 1 is exactly 24 h old: excluded
    assert hist.loc[h(27), "failures_last_1d"] == 0


def test_labels_look_only_forward_within_the_horizon(params: dict, tmp_path: Path) -> None:
    fails = pd.DataFrame({"machine_id": [1], "timestamp": [h(5)], "component": ["seal"]})
    write_sources(tmp_path, readings([1.0] * 8), failures=fails)
    lab = build(params, tmp_path)["labels"]
    # horizon 2 h: (ts, ts + 2] contains hour 5 for ts = 3, 4 only
    assert lab["failure_next_2h"].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert (lab["created"] == lab["event_timestamp"] + pd.Timedelta(hours=2)).all()


def test_reading_at_ts_is_in_its_own_window_and_nulls_are_skipped(
    params: dict, tmp_path: Path
) -> None:
    write_sources(tmp_path, readings([1.0, None, 5.0, None, None, None, 7.0]))
    s = build(params, tmp_path)["sensor_features"]
    assert s["temperature_mean_3h"].iloc[2] == 3.0  # hours 0..2 minus the null
    assert s["temperature_max_3h"].iloc[2] == 5.0  # the reading at ts itself counts
    assert np.isnan(s["temperature_mean_3h"].iloc[5])  # hours 3..5 all null
    assert s["temperature_mean_3h"].iloc[6] == 7.0
    assert len(s) == 7  # a null reading still gets its row


def test_late_reading_makes_created_later_only_within_its_window(
    params: dict, tmp_path: Path
) -> None:
    df = readings([1.0] * 8)
    df["created"] = [h(x) for x in range(8)]
    df.loc[2, "created"] = h(100)
    write_sources(tmp_path, df)
    params["transform"]["rolling_windows_hours"] = [3, 1]  # created follows the longest
    s = build(params, tmp_path)["sensor_features"]
    late = s["created"] == h(100)
    assert late.tolist() == [False, False, True, True, True, False, False, False]


def test_machines_do_not_see_each_other(params: dict, tmp_path: Path) -> None:
    df = pd.concat(
        [
            readings([1.0, 2.0, 3.0]),
            readings([100.0, 200.0, 300.0]).assign(machine_id=2),
        ]
    )
    fails = pd.DataFrame({"machine_id": [2], "timestamp": [h(1)], "component": ["seal"]})
    write_sources(tmp_path, df, failures=fails)
    tables = build(params, tmp_path)
    s = tables["sensor_features"]
    assert s["temperature_max_3h"].tolist() == [1.0, 2.0, 3.0, 100.0, 200.0, 300.0]
    assert tables["machine_history"]["failures_last_1d"].tolist() == [0, 0, 0, 0, 1, 1]
    assert tables["labels"]["failure_next_2h"].tolist() == [0, 0, 0, 1, 0, 0]


def test_results_do_not_depend_on_the_batch_size(params: dict, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    df = pd.concat([readings(list(rng.normal(size=30))).assign(machine_id=m) for m in (1, 2, 3)])
    fails = pd.DataFrame({"machine_id": [1, 3], "timestamp": [h(4), h(9)], "component": "seal"})
    write_sources(tmp_path, df, failures=fails)
    params["transform"]["chunk_rows"] = 1  # one machine per batch
    small = build(params, tmp_path)
    params["transform"]["chunk_rows"] = 10_000
    big = build(params, tmp_path)
    for name in small:
        pd.testing.assert_frame_equal(small[name], big[name])


def test_history_created_reflects_late_records_it_uses(params: dict, tmp_path: Path) -> None:
    maint = pd.DataFrame(
        {"machine_id": [1], "timestamp": [h(2)], "action": ["inspection"], "created": [h(50)]}
    )
    fails = pd.DataFrame(
        {"machine_id": [1], "timestamp": [h(4)], "component": ["seal"], "created": [h(60)]}
    )
    write_sources(tmp_path, readings([1.0] * 40), maint, fails)
    hist = build(params, tmp_path)["machine_history"].set_index("event_timestamp")["created"]
    assert hist[h(1)] == h(1)  # uses nothing: known at ts
    assert hist[h(2)] == h(50)  # uses the late maintenance
    assert hist[h(4)] == h(60) and hist[h(27)] == h(60)  # failure inside the 1-day lookback
    assert hist[h(28)] == h(50)  # failure is 24 h old: no longer used


def test_write_features_outputs_contract(params: dict, tmp_path: Path) -> None:
    df = pd.concat([readings([1.0, 2.0, 3.0, 9.0]).assign(machine_id=m) for m in (2, 1)])
    write_sources(tmp_path, df)
    summary = write_features(
        params, tmp_path, source_specs(params), tmp_path / "features", tmp_path / "n.json"
    )
    for name in ("sensor_features", "machine_history", "labels", "machine_profile"):
        table = pq.read_table(tmp_path / "features" / f"{name}.parquet")
        schema = table.schema
        for col in ("event_timestamp", "created"):
            assert schema.field(col).type == pa.timestamp("us", tz="UTC"), (name, col)
        assert str(schema.field("machine_id").type) == "int64"
        assert "source_file" not in schema.names
        keys = table.select(["machine_id", "event_timestamp"]).to_pandas()
        assert keys.equals(keys.sort_values(["machine_id", "event_timestamp"]))
        assert summary[name]["rows_in"] == summary[name]["rows_out"]
    assert summary["sensor_features"]["rows_out"] == 8
    # the written z / mm are exactly what serving computes from the saved stats
    s = pd.read_parquet(tmp_path / "features" / "sensor_features.parquet")
    raw = s.drop(columns=[c for c in s if c.endswith(("_z", "_mm"))])
    pd.testing.assert_frame_equal(apply_stats(raw, load_stats(tmp_path / "n.json")), s)


def test_stage_entry_point_writes_metrics(params: dict, tmp_path: Path) -> None:
    write_sources(tmp_path / "v", readings([1.0, 2.0, 3.0]))
    params["paths"] = {k: str(tmp_path / k) for k in params["paths"]} | {
        "validated": str(tmp_path / "v")
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert transform_main(["--params", str(tmp_path / "p.yaml")]) == 0
    metrics = json.loads((tmp_path / "metrics" / "transform.json").read_text())
    assert metrics["sensor_features"] == {"rows_in": 3, "rows_out": 3}
    assert (tmp_path / "artifacts" / "normalization.json").exists()


def test_normalization_is_fit_on_the_training_window_only(params: dict, tmp_path: Path) -> None:
    write_sources(tmp_path, readings([1.0, 2.0, 3.0, 4.0, 5.0, 1000.0, -1000.0]))
    tables, stats = build_features(params, tmp_path, source_specs(params))
    t = stats["columns"]["temperature"]
    assert (t["mean"], t["min"], t["max"]) == (3.0, 1.0, 5.0)  # hours 0-4 only
    assert t["std"] == pytest.approx(np.std([1, 2, 3, 4, 5]))
    s = tables["sensor_features"]
    assert s["temperature_z"].iloc[5] == pytest.approx((1000 - 3) / t["std"])
    assert s["temperature_mm"].iloc[0] == 0.0 and s["temperature_mm"].iloc[4] == 1.0
    write_sources(tmp_path, readings([1.0, 2.0, 3.0, 4.0, 9.0, 1000.0, -1000.0]))
    _, changed = build_features(params, tmp_path, source_specs(params))
    assert changed["columns"]["temperature"]["max"] == 9.0


def test_fitted_stats_are_bit_identical_across_runs(params: dict, tmp_path: Path) -> None:
    # Parallel float sums depend on thread scheduling; the stats (and every normalized
    # value, frame hash and model after them) must not. Several machines so that window
    # partitions are processed by different threads.
    rng = np.random.default_rng(3)
    n_machines, n_hours = 40, 500
    df = pd.DataFrame(
        {
            "machine_id": np.repeat(np.arange(1, n_machines + 1), n_hours),
            "timestamp": np.tile([h(x) for x in range(n_hours)], n_machines),
            **{c: rng.normal(50, 20, n_machines * n_hours) for c in ("temperature", "vibration")},
        }
    )
    write_sources(tmp_path, df)
    params["transform"]["train_window"] = {"start": str(h(0)), "end": str(h(n_hours))}
    cfg = TransformConfig.from_params(params)
    fits = set()
    for _ in range(10):
        con = connect(tmp_path, source_specs(params), cfg)
        try:
            fits.add(json.dumps(fit_normalization(con, cfg)["columns"], sort_keys=True))
        finally:
            con.close()
    assert len(fits) == 1
