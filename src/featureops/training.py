"""Train and evaluate a binary classifier on training frames built through a feature service.

The model is a scikit-learn pipeline (imputation, scaling, one-hot encoding, logistic
regression), so serving applies exactly the preprocessing training used. Splits are by time with a gap of
one label horizon between train and evaluation, so no training label looks into the
evaluation window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from featureops.conventions import EVENT_TIMESTAMP


@dataclass
class Split:
    """Train and evaluation frames, split by event time."""

    train: pd.DataFrame
    evaluate: pd.DataFrame


def _utc(value: str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def time_split(frame: pd.DataFrame, split_at: str, gap: pd.Timedelta) -> Split:
    """Train on rows before ``split_at - gap``; evaluate on rows at or after ``split_at``.

    ``gap`` is the label's horizon, so no training label looks into the evaluation window.
    """
    split = _utc(split_at)
    ts = frame[EVENT_TIMESTAMP]
    train = frame[ts < split - gap]
    evaluate = frame[ts >= split]
    if train.empty or evaluate.empty:
        raise ValueError(
            f"time split at {split} leaves an empty side: train {len(train)}, eval {len(evaluate)}"
        )
    return Split(train.reset_index(drop=True), evaluate.reset_index(drop=True))


def split_time(frame: pd.DataFrame, cfg: dict[str, Any]) -> str:
    """``train.split_at`` if set, else midnight ``train.eval_days`` before the data's last day."""
    if cfg.get("split_at"):
        return str(cfg["split_at"])
    last_day = frame[EVENT_TIMESTAMP].max().floor("D")
    return str(last_day - pd.Timedelta(days=float(cfg["eval_days"])))


def feature_columns(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) split of a frame's feature columns, by dtype."""
    categorical = [
        c for c in features if frame[c].dtype == object or str(frame[c].dtype) == "string"
    ]
    numeric = [c for c in features if c not in categorical]
    return numeric, categorical


def make_model(numeric: list[str], categorical: list[str], hyper: dict[str, Any]) -> Pipeline:
    """The model pipeline: preprocessing and classifier in one object, shared with serving.

    Logistic regression: a robust default on small, imbalanced label sets (on the demo's few
    failure episodes gradient boosting memorized the training window while the linear
    model generalized; see README).
    """
    numeric_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    pre = ColumnTransformer(
        [
            ("num", numeric_steps, numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    clf = LogisticRegression(
        C=float(hyper["C"]),
        class_weight=hyper.get("class_weight"),
        max_iter=int(hyper.get("max_iter", 2000)),
        random_state=int(hyper.get("random_state", 0)),
    )
    return Pipeline([("pre", pre), ("clf", clf)])


def train_model(
    train: pd.DataFrame, label: str, features: list[str], hyper: dict[str, Any]
) -> Pipeline:
    """Fit the model on a training frame's ``features`` to predict ``label``."""
    missing = [c for c in [*features, label] if c not in train.columns]
    if missing:
        raise ValueError(f"the training frame lacks column(s) {missing}")
    numeric, categorical = feature_columns(train, features)
    if train[label].nunique() < 2:
        raise ValueError(
            f"the training window has only {label}={train[label].iloc[0]}: widen train.frame_start"
            " / train.split_at or generate more data"
        )
    model = make_model(numeric, categorical, hyper)
    # One BLAS thread: the fit's float sums then do not depend on the machine's core count
    # (with 2 threads the coefficients differed in the 4th digit and the model's sha256 with
    # them), and on a busy 2-core machine it was 14x faster (1 s against 13-16 s).
    with threadpool_limits(limits=1):
        model.fit(train[numeric + categorical], train[label].astype(int))
    return model


def model_inputs(model: Pipeline) -> list[str]:
    """The feature columns a fitted model expects, in order."""
    return list(model.feature_names_in_)


def predict_proba(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class for each row."""
    return model.predict_proba(frame[model_inputs(model)])[:, 1]


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall, F1 at the threshold; ROC AUC and PR AUC (average precision)."""
    pred = (p >= threshold).astype(int)
    single_class = len(np.unique(y)) < 2
    return {
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float("nan") if single_class else float(roc_auc_score(y, p)),
        "pr_auc": float("nan") if single_class else float(average_precision_score(y, p)),
        "positive_rate": float(np.mean(y)),
        "rows": len(y),
    }


def baseline_proba(train_labels: pd.Series, n: int) -> np.ndarray:
    """The trivial baseline: every row gets the training prevalence."""
    return np.full(n, float(train_labels.mean()))


def curves(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, list[dict[str, float]]]:
    """ROC and precision-recall points and confusion-matrix rows, as DVC plot data."""
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    step_roc = max(1, len(fpr) // 200)
    step_pr = max(1, len(precision) // 200)
    pred = (p >= threshold).astype(int)
    cm = confusion_matrix(y, pred, labels=[0, 1])
    return {
        "roc": [
            {"fpr": float(a), "tpr": float(b)}
            for a, b in zip(fpr[::step_roc], tpr[::step_roc], strict=True)
        ],
        "precision_recall": [
            {"recall": float(r), "precision": float(q)}
            for r, q in zip(recall[::step_pr], precision[::step_pr], strict=True)
        ],
        "confusion": [
            {"actual": int(a), "predicted": int(b)}
            for a in (0, 1)
            for b in (0, 1)
            for _ in range(int(cm[a, b]))
        ],
    }


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (model artifacts are checked against their manifest)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
