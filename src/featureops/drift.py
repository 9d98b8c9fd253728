"""Drift statistics between a reference sample and a current one, vectorized with numpy.

- numeric features: population stability index (PSI) on reference-quantile bins, and the
  two-sample Kolmogorov-Smirnov statistic;
- categorical features: PSI on category shares and a chi-square test of the counts;
- every feature: the change of its missing rate.
A feature is flagged when any statistic passes its threshold from ``params.yaml: monitor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

EPS = 1e-6


@dataclass(frozen=True)
class Thresholds:
    """When a statistic counts as drift."""

    psi: float = 0.2
    ks: float = 0.1
    chi2_pvalue: float = 0.001
    missing_rate_delta: float = 0.05

    @classmethod
    def from_params(cls, cfg: dict[str, Any]) -> Thresholds:
        return cls(**{k: float(cfg[k]) for k in cls.__dataclass_fields__ if k in cfg})


def psi_numeric(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI over bins at the reference's quantiles (open-ended first and last bin)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    cur_counts = np.bincount(
        np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1
    )
    return _psi(ref_counts, cur_counts)


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    p = np.maximum(ref_counts / max(ref_counts.sum(), 1), EPS)
    q = np.maximum(cur_counts / max(cur_counts.sum(), 1), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def histogram(reference: np.ndarray, current: np.ndarray, bins: int = 20) -> dict[str, list[float]]:
    """Shared-edge densities of both samples, for the report's charts."""
    both = np.concatenate([reference, current])
    lo, hi = np.quantile(both, [0.001, 0.999]) if len(both) else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    ref_h, _ = np.histogram(np.clip(reference, lo, hi), edges)
    cur_h, _ = np.histogram(np.clip(current, lo, hi), edges)
    return {
        "edges": edges.tolist(),
        "reference": (ref_h / max(ref_h.sum(), 1)).tolist(),
        "current": (cur_h / max(cur_h.sum(), 1)).tolist(),
    }


def numeric_drift(ref: pd.Series, cur: pd.Series, t: Thresholds) -> dict[str, Any]:
    """PSI, KS and missing-rate change of one numeric feature."""
    r = ref.dropna().to_numpy(dtype=float)
    c = cur.dropna().to_numpy(dtype=float)
    missing_delta = float(cur.isna().mean() - ref.isna().mean())
    out: dict[str, Any] = {"kind": "numeric", "missing_rate_delta": missing_delta}
    if len(r) == 0 or len(c) == 0:
        out.update(psi=None, ks=None, drift=abs(missing_delta) > t.missing_rate_delta)
        return out
    out["psi"] = psi_numeric(r, c)
    out["ks"] = float(stats.ks_2samp(r, c, method="asymp").statistic)
    out["reference_mean"], out["current_mean"] = float(r.mean()), float(c.mean())
    out["histogram"] = histogram(r, c)
    out["drift"] = bool(
        out["psi"] > t.psi or out["ks"] > t.ks or abs(missing_delta) > t.missing_rate_delta
    )
    return out


def categorical_drift(ref: pd.Series, cur: pd.Series, t: Thresholds) -> dict[str, Any]:
    """PSI on category shares, chi-square p-value and missing-rate change of one feature."""
    categories = sorted(set(ref.dropna().astype(str)) | set(cur.dropna().astype(str)))
    ref_counts = (
        ref.dropna().astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    )
    cur_counts = (
        cur.dropna().astype(str).value_counts().reindex(categories, fill_value=0).to_numpy()
    )
    missing_delta = float(cur.isna().mean() - ref.isna().mean())
    psi = _psi(ref_counts, cur_counts)
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    pvalue = 1.0 if table.shape[1] < 2 else float(stats.chi2_contingency(table).pvalue)
    return {
        "kind": "categorical",
        "psi": psi,
        "chi2_pvalue": pvalue,
        "missing_rate_delta": missing_delta,
        "categories": {
            "names": categories,
            "reference": (ref_counts / max(ref_counts.sum(), 1)).tolist(),
            "current": (cur_counts / max(cur_counts.sum(), 1)).tolist(),
        },
        "drift": bool(
            psi > t.psi or pvalue < t.chi2_pvalue or abs(missing_delta) > t.missing_rate_delta
        ),
    }


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], t: Thresholds
) -> dict[str, dict[str, Any]]:
    """Drift statistics for every feature present in both frames."""
    out = {}
    for col in features:
        if col not in reference or col not in current:
            continue
        numeric = pd.api.types.is_numeric_dtype(reference[col]) and not pd.api.types.is_bool_dtype(
            reference[col]
        )
        fn = numeric_drift if numeric else categorical_drift
        out[col] = fn(reference[col], current[col], t)
    return out
