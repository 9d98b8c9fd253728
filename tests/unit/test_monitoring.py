"""Drift statistics, the HTML report, and the promote-only-if-better retraining decision."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featureops import registry
from featureops.drift import Thresholds, feature_drift, psi_numeric
from featureops.drift_report import render_report
from featureops.monitoring import ModelUnderWatch, monitor, reference_sample
from featureops.retraining import DECISIONS_FILE, decide
from featureops.training import predict_proba, train_model

T = Thresholds.from_params(
    {"psi": 0.25, "ks": 0.2, "chi2_pvalue": 0.001, "missing_rate_delta": 0.1}
)
CFG = {
    "psi": 0.25,
    "ks": 0.2,
    "chi2_pvalue": 0.001,
    "missing_rate_delta": 0.1,
    "min_drifted_share": 0.2,
    "max_pr_auc_relative_drop": 0.5,
}
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def sample(
    rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, scale, n),
            "y": rng.exponential(2.0, n) * scale,
            "model": rng.choice(["A100", "B200", "C300"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_same_distribution_is_not_flagged() -> None:
    rng = np.random.default_rng(42)
    result = feature_drift(sample(rng, 20_000), sample(rng, 5_000), ["x", "y", "model"], T)
    assert not any(r["drift"] for r in result.values()), result
    assert result["x"]["psi"] < 0.05 and result["x"]["ks"] < 0.05


def test_shifted_and_scaled_features_are_flagged() -> None:
    rng = np.random.default_rng(42)
    current = sample(rng, 5_000, shift=1.0)
    current["model"] = rng.choice(["A100", "B200", "C300"], 5_000, p=[0.1, 0.3, 0.6])
    result = feature_drift(sample(rng, 20_000), current, ["x", "y", "model"], T)
    assert result["x"]["drift"] and result["x"]["psi"] > 0.25 and result["x"]["ks"] > 0.2
    assert not result["y"]["drift"]
    assert result["model"]["drift"] and result["model"]["chi2_pvalue"] < 1e-6


def test_missing_rate_change_is_flagged() -> None:
    rng = np.random.default_rng(1)
    ref, cur = sample(rng, 5_000), sample(rng, 5_000)
    cur.loc[:1_000, "y"] = np.nan
    result = feature_drift(ref, cur, ["y"], T)
    assert result["y"]["missing_rate_delta"] == pytest.approx(0.2002, abs=1e-3)
    assert result["y"]["drift"]


def test_psi_is_fast_on_millions_of_rows() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=2_000_000), rng.normal(size=2_000_000)
    assert psi_numeric(a, b) < 0.001  # vectorized: runs in well under a second here


def frame(
    rng: np.random.Generator, n: int, start: pd.Timestamp, shift: float = 0.0, driver: str = "x"
) -> pd.DataFrame:
    """Rows whose label depends on ``driver`` (concept drift: change the driver)."""
    df = pd.DataFrame(
        {
            "machine_id": rng.integers(1, 10, n),
            "event_timestamp": start + pd.to_timedelta(np.arange(n), unit="min"),
            "x": rng.normal(shift, 1.0, n),
            "noise": rng.normal(size=n),
        }
    )
    centred = df[driver] - (shift if driver == "x" else 0.0)
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-(3 * centred - 2)))).astype(int)
    return df


def watched(tmp_path: Path, train: pd.DataFrame, name: str = "m") -> ModelUnderWatch:
    model = train_model(train, "label", ["x", "noise"], {"C": 1.0})
    directory = tmp_path / name
    manifest = registry.save_model(
        model, directory, {"features": ["x", "noise"], "threshold": 0.5, "feature_service": "s"}
    )
    ref = reference_sample(train, predict_proba(model, train), 10_000)
    return ModelUnderWatch(model, manifest, ref, name)


def test_monitor_flags_injected_drift_but_not_a_fresh_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    w = watched(tmp_path, frame(rng, 8_000, T0))
    later = T0 + pd.Timedelta(days=30)
    calm = monitor(w, frame(rng, 3_000, later), CFG, "label", later + pd.Timedelta(days=30))
    assert not calm["alert"], calm["drifted_features"]
    drifted = monitor(
        w, frame(rng, 3_000, later, shift=1.5), CFG, "label", later + pd.Timedelta(days=30)
    )
    assert drifted["alert"] and drifted["drifted_features"] == ["x"]
    assert drifted["prediction_drift"]


def test_report_renders_summary_and_one_chart_per_feature(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    w = watched(tmp_path, frame(rng, 4_000, T0))
    result = monitor(w, frame(rng, 2_000, T0, shift=1.5), CFG, "label", T0)
    html = render_report(result)
    assert html.startswith("<!doctype html>") and "ALERT" in html
    assert len(re.findall(r"<tr class=\"(drift|ok)\">", html)) == 3  # x, noise, prediction
    assert len(re.findall(r"<svg ", html)) == 3
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def registered(tmp_path: Path, train: pd.DataFrame, reg: Path, candidate: Path) -> None:
    model = train_model(train, "label", ["x", "noise"], {"C": 1.0})
    registry.save_model(model, candidate, {"threshold": 0.5, "features": ["x", "noise"]})


def test_promotion_refused_when_candidate_is_worse_and_done_when_better(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    reg, cand = tmp_path / "registry", tmp_path / "candidate"
    good = frame(rng, 5_000, T0)
    window = frame(rng, 3_000, T0 + pd.Timedelta(days=10))
    registered(tmp_path, good, reg, cand)
    first = decide(reg, cand, window, "label", 0.005)
    assert first["promoted"] and first["version"] == "v1"

    worse = good.assign(label=rng.permutation(good["label"].to_numpy()))  # no signal left
    registered(tmp_path, worse, reg, cand)
    refused = decide(reg, cand, window, "label", 0.005)
    assert not refused["promoted"] and registry.production_version(reg) == "v1"
    m = refused["metrics"]
    assert m["candidate"]["pr_auc"] < m["production"]["pr_auc"]
    assert m["candidate"]["rows"] == m["production"]["rows"] == len(window)  # same rows

    shifted = frame(rng, 5_000, T0, driver="noise")  # the failure mechanism changed
    window2 = frame(rng, 3_000, T0 + pd.Timedelta(days=10), driver="noise")
    registered(tmp_path, shifted, reg, cand)
    better = decide(reg, cand, window2, "label", 0.005)
    assert better["promoted"] and registry.production_version(reg) == "v2"
    manifest = registry.read_manifest(reg / "v2")
    assert (
        manifest["promotion"]["metrics"]["production"]["pr_auc"]
        < manifest["promotion"]["metrics"]["candidate"]["pr_auc"]
    )
    log = [json.loads(line) for line in (reg / DECISIONS_FILE).read_text().splitlines()]
    assert [d["promoted"] for d in log] == [True, False, True]
