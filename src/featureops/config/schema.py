"""A schema for params.yaml, checked before any stage runs: types, ranges, lists.

Dataset sections (``sources``, ``features``, ``label``) are checked by their own typed
parsers (``SourceSpec``, ``load_feature_tables``, ``LabelSpec``), which know the data's
columns; this module checks the platform's knobs. A problem becomes one ConfigError line
naming the file and the key, e.g. ``params.yaml: train.model.C: Input should be a valid
number (got 'high')``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from featureops.config.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class PathsModel(_Section):
    landing: str
    interim: str
    validated: str
    quarantine: str
    features: str
    artifacts: str
    reports: str
    metrics: str
    plots: str
    frames: str
    candidate: str
    registry: str
    feature_log: str
    labels: str


class IngestModel(_Section):
    naive_timezone: str = "UTC"
    max_bad_row_share: float = Field(0.5, ge=0, le=1)


class ValidateModel(_Section):
    max_bad_row_share: float = Field(0.05, ge=0, le=1)
    reference_time: str | None = None


class SparkModel(_Section):
    """``transform.spark``: the session the Spark engine starts (``transform.engine: spark``)."""

    master: str = "local[2]"
    app_name: str = "featureops-transform"
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)
    scratch_dir: str | None = None  # Spark's Parquet before the single file; shared on a cluster


class TransformModel(_Section):
    chunk_rows: int = Field(1_000_000, gt=0)
    engine: Literal["duckdb", "spark"] = "duckdb"  # error: "Input should be 'duckdb' or 'spark'"
    spark: SparkModel = Field(default_factory=SparkModel)


class FeastModel(_Section):
    repo: str
    registry: str
    online_store: str


class ModelHyper(_Section):
    C: float = Field(gt=0)
    class_weight: Literal["balanced"] | None = None
    max_iter: int = Field(2000, gt=0)
    random_state: int = 0


class TrainModel(_Section):
    feature_service: str
    frame_start: str | None = None
    frame_end: str | None = None
    split_at: str | None = None
    eval_days: float = Field(gt=0)
    as_known_at: bool
    threshold: float = Field(ge=0, le=1)
    model: ModelHyper


class MonitorModel(_Section):
    current_days: float = Field(gt=0)
    reference_rows: int = Field(gt=0)
    psi: float = Field(gt=0)
    ks: float = Field(gt=0, le=1)
    chi2_pvalue: float = Field(gt=0, lt=1)
    missing_rate_delta: float = Field(ge=0, le=1)
    min_drifted_share: float = Field(ge=0, le=1)
    max_pr_auc_relative_drop: float = Field(ge=0, le=1)
    fail_on_alert: bool = False
    min_improvement: float = Field(ge=0)


class ServingModel(_Section):
    model_config = ConfigDict(extra="allow")  # the service may add knobs of its own

    max_ids: int = Field(100, gt=0)
    reference_time: str | None = None
    api_key_env: str | None = None
    log_flush_rows: int = Field(1000, gt=0)
    log_flush_seconds: float = Field(30, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)


class ParamsModel(BaseModel):
    """The whole file: platform sections typed, dataset sections as mappings."""

    model_config = ConfigDict(extra="allow")  # e.g. an example's `simulate` section

    paths: PathsModel
    sources: dict[str, dict[str, Any]]
    features: dict[str, dict[str, Any]]
    label: dict[str, Any]
    ingest: IngestModel = Field(default_factory=IngestModel)
    validate_: ValidateModel = Field(default_factory=ValidateModel, alias="validate")
    transform: TransformModel = Field(default_factory=TransformModel)
    feast: FeastModel
    train: TrainModel
    monitor: MonitorModel
    serving: ServingModel = Field(default_factory=ServingModel)


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def check_params(params: dict[str, Any], source: str | Path = "params.yaml") -> ParamsModel:
    """Validate params against the schema; raise ConfigError naming the first bad key."""
    try:
        return ParamsModel.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
        raise ConfigError(f"{source}: {_where(error['loc'])}: {error['msg']}{got}") from None
