"""Monitoring: compare recent feature data with the production model's training reference.

The reference is the training sample stored beside the model in the registry (or the
candidate's, before anything is in production). The current window is the last
``monitor.current_days`` of data, retrieved through the same feature service. The result
says per feature whether it drifted, whether the predictions drifted, and whether the model's
performance on the labelled part of the window dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from featureops import registry
from featureops.conventions import EVENT_TIMESTAMP
from featureops.drift import Thresholds, feature_drift, histogram, psi_numeric
from featureops.frames import build_frame
from featureops.training import classification_metrics, predict_proba

if TYPE_CHECKING:
    from feast import FeatureStore

REFERENCE_FILE = "reference.parquet"


@dataclass
class ModelUnderWatch:
    """The model whose reference the current data is compared with."""

    model: Any
    manifest: dict[str, Any]
    reference: pd.DataFrame
    source: str


def watched_model(registry_dir: Path, candidate_dir: Path) -> ModelUnderWatch:
    """The production model if there is one, else the candidate (integrity-checked)."""
    version = registry.production_version(registry_dir)
    directory = Path(registry_dir) / version if version else Path(candidate_dir)
    model, manifest = registry.load_model(directory)
    if not (directory / REFERENCE_FILE).exists():
        raise FileNotFoundError(
            f"{directory} has no {REFERENCE_FILE} (the training reference written by the train "
            "stage); re-register a model trained by this version of featureops"
        )
    reference = pd.read_parquet(directory / REFERENCE_FILE)
    return ModelUnderWatch(
        model, manifest, reference, f"production {version}" if version else "candidate"
    )


def current_window(
    store: FeatureStore,
    service: str,
    label_rows: pd.DataFrame,
    days: float,
    as_known_at: bool = True,
) -> pd.DataFrame:
    """The last ``days`` of label rows, through the feature service (labels kept).

    Retrieved the way the watched model's training frame was (``as_known_at``), so a
    difference is drift, not a change of retrieval semantics.
    """
    end = label_rows[EVENT_TIMESTAMP].max() + pd.Timedelta(microseconds=1)
    recent = label_rows[label_rows[EVENT_TIMESTAMP] >= end - pd.Timedelta(days=days)]
    return build_frame(store, service, recent.reset_index(drop=True), as_known_at=as_known_at)


def monitor(
    watched: ModelUnderWatch,
    current: pd.DataFrame,
    cfg: dict[str, Any],
    label: str,
    labels_complete_before: pd.Timestamp,
) -> dict[str, Any]:
    """Feature drift, prediction drift and performance change; ``alert`` if any passes."""
    t = Thresholds.from_params(cfg)
    features = list(watched.manifest["features"])
    per_feature = feature_drift(watched.reference, current, features, t)
    ref_p = watched.reference["probability"].to_numpy(dtype=float)
    cur_p = predict_proba(watched.model, current)
    prediction: dict[str, Any] = {
        "psi": psi_numeric(ref_p, cur_p),
        "reference_mean": float(ref_p.mean()),
        "current_mean": float(cur_p.mean()),
        "histogram": histogram(ref_p, cur_p),
    }
    prediction["drift"] = bool(prediction["psi"] > t.psi)
    labelled = current[current[EVENT_TIMESTAMP] < labels_complete_before]
    threshold = float(watched.manifest["threshold"])
    performance: dict[str, Any] = {"rows": len(labelled)}
    if len(labelled) and labelled[label].nunique() == 2:
        now = classification_metrics(
            labelled[label].to_numpy(), predict_proba(watched.model, labelled), threshold
        )
        ref = classification_metrics(watched.reference[label].to_numpy(), ref_p, threshold)
        drop = (ref["pr_auc"] - now["pr_auc"]) / ref["pr_auc"] if ref["pr_auc"] else 0.0
        performance.update(current=now, reference=ref, pr_auc_relative_drop=float(drop))
        performance["drop"] = bool(drop > float(cfg["max_pr_auc_relative_drop"]))
    else:
        performance["drop"] = False
        performance["note"] = "not enough labelled rows with both classes in the window"
    drifted = sorted(f for f, r in per_feature.items() if r["drift"])
    share = len(drifted) / max(len(per_feature), 1)
    feature_alert = share >= float(cfg["min_drifted_share"])
    return {
        "model": watched.source,
        "model_sha256": watched.manifest["sha256"],
        "reference_rows": len(watched.reference),
        "current_rows": len(current),
        "current_window": [
            str(current[EVENT_TIMESTAMP].min()),
            str(current[EVENT_TIMESTAMP].max()),
        ],
        "thresholds": t.__dict__,
        "drifted_features": drifted,
        "drifted_share": share,
        "feature_drift": feature_alert,
        "prediction_drift": prediction["drift"],
        "performance_drop": performance["drop"],
        "alert": bool(feature_alert or prediction["drift"] or performance["drop"]),
        "features": per_feature,
        "prediction": prediction,
        "performance": performance,
    }


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The compact, DVC-metric part of a monitoring result (no histograms)."""
    return {
        "alert": result["alert"],
        "feature_drift": result["feature_drift"],
        "prediction_drift": result["prediction_drift"],
        "performance_drop": result["performance_drop"],
        "drifted_share": round(result["drifted_share"], 4),
        "drifted_features": result["drifted_features"],
        "prediction_psi": round(result["prediction"]["psi"], 4),
        "pr_auc_current": result["performance"].get("current", {}).get("pr_auc"),
        "pr_auc_reference": result["performance"].get("reference", {}).get("pr_auc"),
        "pr_auc_relative_drop": result["performance"].get("pr_auc_relative_drop"),
        "model": result["model"],
        "current_window": result["current_window"],
        "features": {
            name: {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in r.items()
                if k not in ("histogram", "categories")
            }
            for name, r in result["features"].items()
        },
    }


def reference_sample(
    frame: pd.DataFrame, probabilities: np.ndarray, max_rows: int, seed: int = 0
) -> pd.DataFrame:
    """The training rows kept beside a model as its drift reference (sampled if large)."""
    out = frame.assign(probability=probabilities)
    if len(out) > max_rows:
        out = out.sample(max_rows, random_state=seed).sort_index()
    return out.reset_index(drop=True)
