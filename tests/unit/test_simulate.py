"""The demo simulator: deterministic, contract layout, defects counted exactly, failures caused
by wear that the sensors show."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

import featureops.simulate as sim
from featureops.config import ConfigError
from featureops.simulate import simulate_fleet
from pipelines.simulate import main as simulate_stage
from tests.conftest import load_repo_params

SENSOR_HEADER = "machine_id,timestamp,temperature,vibration,pressure,rpm"
HOURLY_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:00:00Z$")


@pytest.fixture
def params() -> dict:
    params = copy.deepcopy(load_repo_params())
    params["simulate"].update(n_machines=8, n_days=6)
    return params


@pytest.fixture
def cfg(params: dict) -> dict:
    return params["simulate"]


def no_defects(cfg: dict) -> dict:
    cfg["defects"] = {k: 0 for k in cfg["defects"]} | {"max_late_days": 1}
    return cfg


def sensor_lines(landing: Path) -> list[tuple[str, str]]:
    """(file date, line) for every data line of every sensor file."""
    out = []
    for path in sorted((landing / "sensors").glob("*.csv")):
        lines = path.read_text().splitlines()
        assert lines[0] == SENSOR_HEADER
        out += [(path.stem.removeprefix("sensors_"), line) for line in lines[1:]]
    return out


def read_all(landing: Path, source: str) -> pd.DataFrame:
    return pd.concat(pd.read_csv(p) for p in sorted((landing / source).glob("*.csv")))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_same_seed_gives_identical_bytes_and_other_seed_differs(
    tmp_path: Path, params: dict
) -> None:
    cfg = params["simulate"]
    simulate_fleet(cfg, tmp_path / "a", params["sources"])
    simulate_fleet(cfg, tmp_path / "b", params["sources"])
    simulate_fleet({**cfg, "seed": cfg["seed"] + 1}, tmp_path / "c", params["sources"])
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for rel in files_a:
        if (tmp_path / "a" / rel).is_file():
            assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert sensor_lines(tmp_path / "a") != sensor_lines(tmp_path / "c")


def test_layout_headers_and_values_follow_the_contract(tmp_path: Path, params: dict) -> None:
    cfg = no_defects(params["simulate"])
    summary = simulate_fleet(cfg, tmp_path, params["sources"])
    dates = [f"2026-01-0{d}" for d in range(1, 7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "failures",
        "machines",
        "maintenance",
        "sensors",
    ]
    headers = {
        "sensors": SENSOR_HEADER,
        "maintenance": "machine_id,timestamp,action",
        "failures": "machine_id,timestamp,component",
    }
    for source, header in headers.items():
        files = sorted((tmp_path / source).iterdir())
        assert [p.name for p in files] == [f"{source}_{d}.csv" for d in dates]
        assert all(p.read_text().splitlines()[0] == header for p in files)
    lines = sensor_lines(tmp_path)
    assert len(lines) == 8 * 24 * 6 == summary["rows"]["sensors"]
    for date, line in lines:
        fields = line.split(",")
        assert HOURLY_TS.match(fields[1]) and fields[1][:10] == date
    machines = pd.read_csv(tmp_path / "machines" / "machines.csv")
    assert list(machines.columns) == ["machine_id", "model", "location", "install_date"]
    assert machines["machine_id"].tolist() == list(range(1, 9))
    assert (pd.to_datetime(machines["install_date"]) < pd.Timestamp("2026-01-01", tz="UTC")).all()
    assert set(machines["model"]) <= set(
        params["sources"]["machines"]["checks"]["categories"]["model"]
    )
    maintenance = read_all(tmp_path, "maintenance")
    failures = read_all(tmp_path, "failures")
    assert set(maintenance["action"]) <= {"inspection", "lubrication", "part_replacement"}
    assert set(failures["component"]) <= {"bearing", "motor", "seal"}
    assert len(maintenance) == summary["rows"]["maintenance"]
    assert len(failures) == summary["rows"]["failures"]
    assert summary["start_date"] == "2026-01-01" and summary["end_date"] == "2026-01-06"
    assert summary["last_timestamp"] == "2026-01-06T23:00:00Z"


def test_injected_defects_match_the_summary(tmp_path: Path, params: dict) -> None:
    cfg = params["simulate"]
    cfg["defects"].update(
        missing_rate=0.02,
        duplicate_rate=0.02,
        malformed_rate=0.01,
        wrong_type_rate=0.01,
        out_of_range_rate=0.01,
        late_rate=0.03,
    )
    summary = simulate_fleet(cfg, tmp_path, params["sources"])
    d = summary["defects"]
    assert all(d[k] > 0 for k in d), d
    lines = sensor_lines(tmp_path)
    bodies = [line for _, line in lines]
    assert summary["rows"]["sensors"] == len(bodies) == 8 * 24 * 6 + d["duplicate"]
    assert sum(1 for b in bodies if b.count(",") != 5) == d["malformed"]
    per_file = {}
    for date, line in lines:
        per_file.setdefault(date, []).append(line)
    assert sum(len(v) - len(set(v)) for v in per_file.values()) == d["duplicate"]
    assert len(bodies) - len(set(bodies)) == d["duplicate"]  # duplicates only within a file
    well_formed = [b.split(",") for b in bodies if b.count(",") == 5]
    assert sum(1 for f in well_formed if "" in f[2:]) == d["missing"]
    assert (
        sum(1 for f in well_formed if any(v and not is_number(v) for v in f[2:])) == d["wrong_type"]
    )
    ranges = params["sources"]["sensors"]["checks"]["ranges"]
    columns = SENSOR_HEADER.split(",")[2:]

    def out_of_range(f: list[str]) -> bool:
        values = dict(zip(columns, f[2:], strict=True))
        return all(is_number(v) for v in values.values()) and any(
            not ranges[c][0] <= float(v) <= ranges[c][1] for c, v in values.items()
        )

    assert sum(1 for f in well_formed if out_of_range(f)) == d["out_of_range"]
    ts_dates = [(date, line.split(",")[1][:10]) for date, line in lines]
    assert sum(1 for date, ts in ts_dates if ts < date) == d["late"]
    assert not any(ts > date for date, ts in ts_dates)  # nothing arrives early
    max_late = cfg["defects"]["max_late_days"]
    assert all((pd.Timestamp(date) - pd.Timestamp(ts)).days <= max_late for date, ts in ts_dates)


def test_late_rows_past_the_last_day_stay_on_time(tmp_path: Path, params: dict) -> None:
    cfg = no_defects(params["simulate"])
    cfg["defects"].update(late_rate=0.5, max_late_days=10)
    summary = simulate_fleet(cfg, tmp_path, params["sources"])
    lines = sensor_lines(tmp_path)
    on_last_day = [line for date, line in lines if line.split(",")[1][:10] == "2026-01-06"]
    assert len(on_last_day) == 8 * 24  # the last day's rows all stay in its own file
    assert len(lines) == 8 * 24 * 6
    assert 0 < summary["defects"]["late"] < 0.5 * len(lines)


def test_drift_shifts_temperature_after_start_day(tmp_path: Path, params: dict) -> None:
    cfg = no_defects(params["simulate"])
    simulate_fleet(cfg, tmp_path / "base", params["sources"])
    cfg["drift"].update(enabled=True, start_day=3, temperature_shift=10.0, vibration_scale=1.5)
    summary = simulate_fleet(cfg, tmp_path / "drift", params["sources"])
    assert summary["drift_start_date"] == "2026-01-04"
    base = read_all(tmp_path / "base", "sensors")
    drift = read_all(tmp_path / "drift", "sensors")
    after = base["timestamp"] >= "2026-01-04"
    assert (drift["timestamp"] >= "2026-01-04").equals(after)
    shift = drift.loc[after, "temperature"].mean() - base.loc[after, "temperature"].mean()
    assert shift == pytest.approx(10, abs=0.01)
    ratio = drift.loc[after, "vibration"].mean() / base.loc[after, "vibration"].mean()
    assert ratio == pytest.approx(1.5, rel=0.01)
    before = ~after
    assert drift.loc[before, "temperature"].tolist() == base.loc[before, "temperature"].tolist()


def test_default_fleet_has_learnable_failures(tmp_path: Path) -> None:
    params = load_repo_params()
    cfg = no_defects(params["simulate"])
    summary = simulate_fleet(cfg, tmp_path, params["sources"])
    assert 15 <= summary["failures"] <= 60
    assert 0.01 <= summary["positive_rate_24h"] <= 0.1
    sensors = read_all(tmp_path, "sensors")
    sensors["timestamp"] = pd.to_datetime(sensors["timestamp"])
    failures = read_all(tmp_path, "failures")
    failures["timestamp"] = pd.to_datetime(failures["timestamp"])
    failures = failures[failures["timestamp"] >= pd.Timestamp("2026-01-02", tz="UTC")]
    assert len(failures) >= 10
    before, after = [], []
    by_machine = dict(tuple(sensors.groupby("machine_id")))
    for f in failures.itertuples():
        s = by_machine[f.machine_id]
        window = (s.timestamp <= f.timestamp) & (s.timestamp > f.timestamp - pd.Timedelta("24h"))
        before.append(s.loc[window, "vibration"].mean())
        after.append(s.loc[s.timestamp > f.timestamp, "vibration"].head(6).mean())
    overall = sensors["vibration"].mean()
    assert pd.Series(before).mean() > overall * 1.3
    assert pd.Series(after).dropna().mean() < overall  # repaired: wear reset
    repairs = read_all(tmp_path, "maintenance").query("action == 'part_replacement'")
    assert len(repairs) >= len(failures)


def test_models_must_match_the_declared_categories(tmp_path: Path, params: dict) -> None:
    params["simulate"]["machine_models"] = ["A100", "Z999"]
    with pytest.raises(ConfigError, match="machine_models"):
        simulate_fleet(params["simulate"], tmp_path / "raw", params["sources"])
    assert not (tmp_path / "raw").exists()


def test_landing_is_replaced_atomically(
    tmp_path: Path, params: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "raw"
    (landing / "sensors").mkdir(parents=True)
    (landing / "sensors" / "stale.csv").write_text("old\n")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(sim, "write_sensor_days", crash)
        with pytest.raises(RuntimeError):
            simulate_fleet(params["simulate"], landing, params["sources"])
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temp leftovers
    assert (landing / "sensors" / "stale.csv").read_text() == "old\n"
    simulate_fleet(params["simulate"], landing, params["sources"])
    assert not (landing / "sensors" / "stale.csv").exists()
    assert len(list((landing / "sensors").glob("*.csv"))) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


def test_stage_writes_landing_and_metrics(
    tmp_path: Path, params: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert simulate_stage(["--params", "params.yaml"]) == 0
    metrics = json.loads((tmp_path / params["paths"]["metrics"] / "simulate.json").read_text())
    landing = tmp_path / params["paths"]["landing"]
    assert metrics["rows"]["sensors"] == len(sensor_lines(landing))
    assert set(metrics["defects"]) == {
        "missing",
        "duplicate",
        "malformed",
        "wrong_type",
        "out_of_range",
        "late",
    }
    params["simulate"]["n_machines"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert simulate_stage(["--params", "params.yaml"]) == 2
