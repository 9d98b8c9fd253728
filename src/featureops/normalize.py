"""Normalization statistics: fit on the training window only, saved, applied identically
by the transform stage and by serving (both call :func:`apply_stats` on the saved numbers).

- z-score: ``(x - mean) / std`` with the population standard deviation (ddof=0);
- min-max: ``(x - min) / (max - min)``, so the training range maps to [0, 1] (values
  outside the training window may fall outside it; they are not clipped).

A constant column (``std == 0`` or ``max == min``) maps to 0.0 instead of inf/NaN; a
column with no non-null value in the window has null statistics and maps to NaN. A null
input stays NaN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from featureops.io import write_json

STATS = ("mean", "std", "min", "max")


def window_bounds(window: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of a ``{start, end}`` mapping as UTC timestamps (naive = UTC)."""
    bounds = []
    for key in ("start", "end"):
        ts = pd.Timestamp(window[key])
        bounds.append(ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC"))
    start, end = bounds
    if end <= start:
        raise ValueError(f"normalization window is empty: [{start}, {end})")
    return start, end


def epoch_us(ts: pd.Timestamp) -> int:
    """Microseconds since the Unix epoch of a timezone-aware timestamp."""
    return int(ts.value // 1000)


def fit_stats(
    data: pd.DataFrame | duckdb.DuckDBPyRelation,
    columns: list[str],
    timestamp_column: str,
    window: dict[str, str],
) -> dict[str, Any]:
    """Mean, std (ddof=0), min and max per column over rows with timestamp in ``[start, end)``.

    ``data`` is a DataFrame or a DuckDB relation (the transform stage fits on a relation so
    that tens of millions of rows never pass through pandas). Raises ValueError if no row
    falls in the window.
    """
    start, end = window_bounds(window)
    if isinstance(data, pd.DataFrame):
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")  # deterministic float sums (see transform.fit_normalization)
        rel = con.from_df(data[[timestamp_column, *columns]])
    else:
        rel = data
    ts = f"epoch_us({_q(timestamp_column)})"
    aggs = ["count(*)"] + [
        f"{fn}({_q(c)}::DOUBLE)" for c in columns for fn in ("avg", "stddev_pop", "min", "max")
    ]
    row = (
        rel.filter(f"{ts} >= {epoch_us(start)} AND {ts} < {epoch_us(end)}")
        .aggregate(", ".join(aggs))
        .fetchall()[0]
    )
    rows, values = int(row[0]), row[1:]
    if rows == 0:
        raise ValueError(f"no rows in the normalization window [{start}, {end})")
    stats = {
        col: {
            name: None if v is None else float(v)
            for name, v in zip(STATS, values[4 * i : 4 * i + 4], strict=True)
        }
        for i, col in enumerate(columns)
    }
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "rows": rows,
        "method": {
            "z": "(x - mean) / std, std = population (ddof=0); 0.0 if std == 0",
            "mm": "(x - min) / (max - min); 0.0 if max == min",
        },
        "columns": stats,
    }


def _scale(x: np.ndarray, offset: float | None, scale: float | None) -> np.ndarray:
    """``(x - offset) / scale``; 0.0 where scale is 0; NaN where x or the stats are null."""
    if offset is None or scale is None or not np.isfinite(scale):
        return np.full(x.shape, np.nan)
    if scale == 0:
        return np.where(np.isnan(x), np.nan, 0.0)
    return (x - offset) / scale


def normalized_names(stats: dict[str, Any]) -> list[str]:
    """Columns :func:`apply_stats` adds: ``<col>_z`` and ``<col>_mm`` per fitted column."""
    return [f"{c}_{s}" for c in stats["columns"] for s in ("z", "mm")]


def apply_stats(df: pd.DataFrame, stats: dict[str, Any]) -> pd.DataFrame:
    """Return ``df`` plus ``<col>_z`` and ``<col>_mm`` for every fitted column ``df`` has.

    Serving calls this on online feature rows with the stats from :func:`load_stats`, so
    training and serving compute the same numbers with the same code.
    """
    new: dict[str, np.ndarray] = {}
    fitted = stats["columns"]
    for col in [c for c in df.columns if c in fitted]:
        s = fitted[col]
        x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        new[f"{col}_z"] = _scale(x, s["mean"], s["std"])
        span = None if s["max"] is None or s["min"] is None else s["max"] - s["min"]
        new[f"{col}_mm"] = _scale(x, s["min"], span)
    kept = df.drop(columns=[c for c in new if c in df])
    return pd.concat([kept, pd.DataFrame(new, index=df.index)], axis=1)


def save_stats(stats: dict[str, Any], path: str | Path) -> Path:
    """Write the statistics JSON atomically (floats round-trip exactly through JSON)."""
    return write_json(stats, path)


def load_stats(path: str | Path) -> dict[str, Any]:
    """Read statistics written by :func:`save_stats`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"normalization statistics not found: {path} (run `dvc repro`)")
    stats = json.loads(path.read_text())
    if not isinstance(stats, dict) or "columns" not in stats:
        raise ValueError(f"{path}: not a normalization statistics file")
    return stats


def _q(name: str) -> str:
    """Quote a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
