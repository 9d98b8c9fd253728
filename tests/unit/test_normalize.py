"""Normalization: fit on the train window only; z-score / min-max applied identically."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from featureops.normalize import apply_stats, fit_stats, load_stats, save_stats

T0 = pd.Timestamp("2026-01-01", tz="UTC")
WINDOW = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T05:00:00Z"}


def frame(values: list[float | None], start_hour: int = 0) -> pd.DataFrame:
    hours = range(start_hour, start_hour + len(values))
    return pd.DataFrame(
        {"ts": [T0 + pd.Timedelta(hours=h) for h in hours], "x": pd.array(values, "Float64")}
    ).astype({"x": "float64"})


def test_fit_uses_only_rows_inside_the_half_open_window() -> None:
    stats = fit_stats(frame([1.0, 2.0, 3.0, 4.0, 5.0, 99.0]), ["x"], "ts", WINDOW)
    x = stats["columns"]["x"]
    assert (x["mean"], x["min"], x["max"]) == (3.0, 1.0, 5.0)  # hour 5 == end: excluded
    assert x["std"] == pytest.approx(np.std([1, 2, 3, 4, 5]))
    assert stats["rows"] == 5


def test_extreme_values_outside_the_window_leave_stats_unchanged() -> None:
    base = frame([1.0, 2.0, 3.0, 4.0, 5.0])
    outside = pd.concat([frame([-1e9], start_hour=-1), base, frame([1e9, 1e12], 5)])
    assert fit_stats(outside, ["x"], "ts", WINDOW) == fit_stats(base, ["x"], "ts", WINDOW)


def test_a_value_inside_the_window_changes_stats() -> None:
    base = fit_stats(frame([1.0, 2.0, 3.0, 4.0, 5.0]), ["x"], "ts", WINDOW)
    changed = fit_stats(frame([1.0, 2.0, 3.0, 4.0, 50.0]), ["x"], "ts", WINDOW)
    assert changed["columns"]["x"]["max"] == 50.0 != base["columns"]["x"]["max"]
    assert changed["columns"]["x"]["mean"] != base["columns"]["x"]["mean"]


def test_empty_window_raises() -> None:
    with pytest.raises(ValueError, match="no rows"):
        fit_stats(frame([1.0], start_hour=10), ["x"], "ts", WINDOW)


def test_z_and_min_max_values() -> None:
    stats = {"columns": {"x": {"mean": 3.0, "std": 2.0, "min": 1.0, "max": 5.0}}}
    out = apply_stats(frame([1.0, 3.0, 5.0, 9.0, None]), stats)
    assert out["x_z"].tolist()[:4] == [-1.0, 0.0, 1.0, 3.0]
    assert out["x_mm"].tolist()[:4] == [0.0, 0.5, 1.0, 2.0]  # not clipped outside [0, 1]
    assert np.isnan(out["x_z"].iloc[4]) and np.isnan(out["x_mm"].iloc[4])
    assert out["x"].tolist()[:4] == [1.0, 3.0, 5.0, 9.0]  # raw column kept


def test_constant_column_maps_to_zero_not_inf_or_nan() -> None:
    df = frame([5.0, 5.0, 5.0, None])
    out = apply_stats(df, fit_stats(df, ["x"], "ts", WINDOW))
    assert out["x_z"].tolist()[:3] == [0.0, 0.0, 0.0]
    assert out["x_mm"].tolist()[:3] == [0.0, 0.0, 0.0]
    assert np.isnan(out["x_z"].iloc[3])
    assert np.isfinite(out[["x_z", "x_mm"]].iloc[:3].to_numpy()).all()


def test_all_null_column_gives_null_stats_and_nan_outputs() -> None:
    df = frame([None, None])
    stats = fit_stats(df, ["x"], "ts", WINDOW)
    assert stats["columns"]["x"]["mean"] is None
    assert apply_stats(df, stats)["x_z"].isna().all()


def test_saved_stats_round_trip_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"ts": [T0 + pd.Timedelta(minutes=m) for m in range(200)], "x": rng.normal(7, 3, 200)}
    )
    stats = fit_stats(df, ["x"], "ts", WINDOW)
    loaded = load_stats(save_stats(stats, tmp_path / "n.json"))
    assert loaded["columns"] == stats["columns"]
    pd.testing.assert_frame_equal(apply_stats(df, loaded), apply_stats(df, stats))


def test_fit_on_relation_equals_fit_on_dataframe() -> None:
    df = frame([1.0, 4.0, 2.0, 8.0, 3.0, 100.0])
    con = duckdb.connect()
    assert fit_stats(con.from_df(df), ["x"], "ts", WINDOW) == fit_stats(df, ["x"], "ts", WINDOW)


def test_load_missing_stats_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_stats(tmp_path / "absent.json")
