"""Names of the feature tables and their columns, derived from ``params.yaml``.

The transform stage writes these tables and ``feature_repo/`` defines Feast views over
them; both take the names from here so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featureops.config import DEFAULT_PARAMS, load_params

ENTITY_KEY = "machine_id"
EVENT_TIMESTAMP = "event_timestamp"
CREATED = "created"

SENSOR_TABLE = "sensor_features"
HISTORY_TABLE = "machine_history"
PROFILE_TABLE = "machine_profile"
LABEL_TABLE = "labels"
NORMALIZATION_FILE = "normalization.json"


def rolling_columns(params: dict[str, Any]) -> list[str]:
    """``<col>_mean_<w>h`` and ``<col>_max_<w>h`` for every sensor column and window."""
    t = params["transform"]
    return [
        f"{col}_{agg}_{w}h"
        for col in t["sensor_columns"]
        for w in t["rolling_windows_hours"]
        for agg in ("mean", "max")
    ]


def normalized_columns(params: dict[str, Any]) -> list[str]:
    """Columns that get ``_z`` and ``_mm`` siblings: raw sensor columns plus rolling ones."""
    return list(params["transform"]["sensor_columns"]) + rolling_columns(params)


def history_columns(params: dict[str, Any]) -> list[str]:
    """Maintenance-history features on the sensor timeline."""
    return [
        "hours_since_maintenance",
        f"failures_last_{params['transform']['failure_lookback_days']}d",
    ]


def label_column(params: dict[str, Any]) -> str:
    """The label: a failure within the next ``label_horizon_hours``."""
    return f"failure_next_{params['transform']['label_horizon_hours']}h"


def feature_table_path(params: dict[str, Any], table: str, root: str | Path = ".") -> Path:
    """Path of a feature table Parquet file under ``paths.features``."""
    return Path(root) / params["paths"]["features"] / f"{table}.parquet"


def project_root_of(feature_repo: str | Path) -> Path:
    """The project root that holds ``params.yaml`` for a feature repo directory."""
    return Path(feature_repo).resolve().parent


def params_for_feature_repo(feature_repo: str | Path) -> dict[str, Any]:
    """Load the ``params.yaml`` of the project that holds a feature repo."""
    return load_params(project_root_of(feature_repo) / DEFAULT_PARAMS)


def source_path_for_feast(feature_repo: str | Path, params: dict[str, Any], table: str) -> str:
    """A feature table's absolute path, for a Feast FileSource.

    Absolute because Feast resolves relative FileSource paths inconsistently (source
    validation against the feature repo, the DuckDB offline store against the working
    directory). The registry is therefore machine-local: it is rebuilt by `feast apply`
    in each clone and not pushed to the DVC remote.
    """
    return str(feature_table_path(params, table, project_root_of(feature_repo)).resolve())
