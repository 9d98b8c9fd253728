"""Retraining loop: compare the candidate with production on the same recent window and
promote it only if it is better; both evaluations are recorded in the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from featureops import registry
from featureops.conventions import EVENT_TIMESTAMP
from featureops.io import atomic_path
from featureops.lineage import now_utc
from featureops.training import classification_metrics, predict_proba, split_time, time_split

DECISIONS_FILE = "decisions.jsonl"


def evaluation_window(
    frame: pd.DataFrame, train_cfg: dict[str, Any], horizon: pd.Timedelta
) -> pd.DataFrame:
    """The candidate's held-out window (rows after its split: it never trained on them)."""
    return time_split(frame, split_time(frame, train_cfg), horizon).evaluate


def compare(
    candidate: Any, production: Any, window: pd.DataFrame, label: str, threshold: float
) -> dict[str, dict[str, float]]:
    """Both models' metrics on exactly the same rows."""
    y = window[label].to_numpy()
    return {
        "candidate": classification_metrics(y, predict_proba(candidate, window), threshold),
        "production": classification_metrics(y, predict_proba(production, window), threshold),
    }


def decide(
    registry_dir: Path,
    candidate_dir: Path,
    window: pd.DataFrame,
    label: str,
    min_improvement: float,
) -> dict[str, Any]:
    """Register and promote the candidate if its PR AUC beats production's by more than
    ``min_improvement``; append the decision (with both evaluations) to the registry log."""
    candidate, cand_manifest = registry.load_model(candidate_dir)
    threshold = float(cand_manifest["threshold"])
    current = registry.production_version(registry_dir)
    decision: dict[str, Any] = {
        "at": now_utc(),
        "candidate_sha256": cand_manifest["sha256"],
        "production": current,
        "window": [
            str(window[EVENT_TIMESTAMP].min()),
            str(window[EVENT_TIMESTAMP].max()),
        ],
        "rows": len(window),
        "metric": "pr_auc",
        "min_improvement": min_improvement,
    }
    if current is None:
        decision["metrics"] = {
            "candidate": classification_metrics(
                window[label].to_numpy(), predict_proba(candidate, window), threshold
            )
        }
        promote = True
        decision["reason"] = "no production model"
    else:
        production, _ = registry.load_production(registry_dir)
        decision["metrics"] = compare(candidate, production, window, label, threshold)
        gain = (
            decision["metrics"]["candidate"]["pr_auc"] - decision["metrics"]["production"]["pr_auc"]
        )
        decision["gain"] = gain
        promote = gain > min_improvement
        decision["reason"] = (
            f"candidate PR AUC better by {gain:.4f}"
            if promote
            else f"candidate not better (PR AUC gain {gain:.4f} <= {min_improvement})"
        )
    decision["promoted"] = promote
    if promote:
        version = registry.register(candidate_dir, registry_dir)
        registry.promote(registry_dir, version, reason=decision["reason"])
        decision["version"] = version
        manifest_path = Path(registry_dir) / version / registry.MANIFEST_FILE
        manifest = json.loads(manifest_path.read_text()) | {"promotion": decision}
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    _append_decision(registry_dir, decision)
    return decision


def _append_decision(registry_dir: Path, decision: dict[str, Any]) -> None:
    path = Path(registry_dir) / DECISIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    with atomic_path(path) as tmp:
        tmp.write_text(old + json.dumps(decision, sort_keys=True, default=str) + "\n")
