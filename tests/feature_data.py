"""Small synthetic feature tables shaped like the demo's declarations, for Feast tests.

Columns and types come from ``params.yaml: features`` (through the same compiler the
transform stage uses), so the tables look like the transform stage's output without
running the whole pipeline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from featureops.conventions import CREATED, EVENT_TIMESTAMP
from featureops.feast_defs import FeatureTables
from featureops.io import write_parquet
from tests.conftest import REPO_ROOT, load_repo_params, write_params

KEY = "machine_id"
STATIC_TABLES = ("machine_profile",)  # one row per machine, valid from long before the data


def _values(dtype: str, n: int, rng: np.random.Generator, name: str) -> np.ndarray:
    if dtype == "VARCHAR":
        return rng.choice(["A100", "B200", "C300"] if name == "model" else ["north", "south"], n)
    if dtype in ("BIGINT", "INTEGER"):
        return rng.integers(0, 2, n)
    return rng.normal(50, 10, n)


def make_feature_tables(
    params: dict, root: Path, n_machines: int = 5, hours: int = 48, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Write every declared table under ``root`` with random values; return them."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    declared = FeatureTables(params, root)
    grid = pd.DataFrame(
        [
            (m, start + pd.Timedelta(hours=h))
            for m in range(1, n_machines + 1)
            for h in range(hours)
        ],
        columns=[KEY, EVENT_TIMESTAMP],
    )
    out: dict[str, pd.DataFrame] = {}
    for name in declared.tables:
        if name in STATIC_TABLES:
            base = pd.DataFrame(
                {
                    KEY: range(1, n_machines + 1),
                    EVENT_TIMESTAMP: start - pd.Timedelta(days=365),
                    CREATED: start - pd.Timedelta(days=365),
                }
            )
        else:
            base = grid.assign(**{CREATED: grid[EVENT_TIMESTAMP] + pd.Timedelta(hours=1)})
        df = base.copy()
        for col, dtype in declared.columns(name):
            df[col] = _values(dtype, len(df), rng, col)
        write_parquet(df, declared.path(name))
        out[name] = df
    return out


def make_feast_project(root: Path, **kwargs) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A throw-away project: params.yaml, a copy of feature_repo/ and synthetic features."""
    params = load_repo_params()
    write_params(root, params)
    shutil.copytree(
        REPO_ROOT / params["feast"]["repo"],
        root / params["feast"]["repo"],
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return params, make_feature_tables(params, root, **kwargs)
