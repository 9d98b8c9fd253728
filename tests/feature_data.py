"""Small synthetic feature tables with the catalog's columns, for Feast tests.

They have the shape the transform stage writes, without running the whole pipeline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from featureops import catalog
from featureops.io import write_parquet
from tests.conftest import REPO_ROOT, load_repo_params, write_params


def make_feature_tables(
    params: dict, root: Path, n_machines: int = 5, hours: int = 48, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Write sensor, history, profile and label tables under ``root``; return them."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    grid = pd.DataFrame(
        [
            (m, start + pd.Timedelta(hours=h))
            for m in range(1, n_machines + 1)
            for h in range(hours)
        ],
        columns=[catalog.ENTITY_KEY, catalog.EVENT_TIMESTAMP],
    )
    base = grid.assign(**{catalog.CREATED: grid[catalog.EVENT_TIMESTAMP] + pd.Timedelta(hours=1)})
    sensor_cols = [*params["transform"]["sensor_columns"], *catalog.rolling_columns(params)]
    sensors = base.copy()
    for col in sensor_cols:
        sensors[col] = rng.normal(50, 10, len(base))
    for col in catalog.normalized_columns(params):
        sensors[f"{col}_z"] = (sensors[col] - 50) / 10
        sensors[f"{col}_mm"] = (sensors[col] - 20) / 60
    history = base.copy()
    for col in catalog.history_columns(params):
        history[col] = rng.integers(0, 100, len(base)).astype("float64")
    profile = pd.DataFrame(
        {
            catalog.ENTITY_KEY: range(1, n_machines + 1),
            catalog.EVENT_TIMESTAMP: start - pd.Timedelta(days=365),
            catalog.CREATED: start - pd.Timedelta(days=365),
            "model": rng.choice(["A100", "B200", "C300"], n_machines),
            "location": "plant-north",
        }
    )
    labels = base.copy()
    labels[catalog.label_column(params)] = rng.integers(0, 2, len(base))
    tables = {
        catalog.SENSOR_TABLE: sensors,
        catalog.HISTORY_TABLE: history,
        catalog.PROFILE_TABLE: profile,
        catalog.LABEL_TABLE: labels,
    }
    for name, df in tables.items():
        write_parquet(df, catalog.feature_table_path(params, name, root))
    return tables


def make_feast_project(root: Path, **kwargs) -> tuple[dict, dict[str, pd.DataFrame]]:
    """A throw-away project: params.yaml, a copy of feature_repo/ and synthetic features."""
    params = load_repo_params()
    write_params(root, params)
    shutil.copytree(
        REPO_ROOT / params["feast"]["repo"],
        root / params["feast"]["repo"],
        ignore=shutil.ignore_patterns("data", "__pycache__"),
    )
    return params, make_feature_tables(params, root, **kwargs)
