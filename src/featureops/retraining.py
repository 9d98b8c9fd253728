"""Retraining loop: compare the candidate with production on the same recent window and
promote it only if it is better; both evaluations are recorded in the registry.

``decisions.jsonl`` is append-only: each decision is one line written with a single
``O_APPEND`` write and fsync'd, so earlier decisions are never rewritten and a crash can at
worst leave a torn last line, which :func:`read_decisions` skips and the next append
starts after.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from featureops import registry
from featureops.conventions import EVENT_TIMESTAMP
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
    ``min_improvement``; append the decision (with both evaluations) to the registry log.

    The registry stays locked from reading production to logging the decision."""
    with registry.locked(registry_dir):
        return _decide(registry_dir, candidate_dir, window, label, min_improvement)


def _decide(
    registry_dir: Path,
    candidate_dir: Path,
    window: pd.DataFrame,
    label: str,
    min_improvement: float,
) -> dict[str, Any]:
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
        decision["version"] = version
        # The version's manifest records why before production points at it.
        registry.update_manifest(Path(registry_dir) / version, {"promotion": decision})
        registry.promote(registry_dir, version, reason=decision["reason"])
    append_decision(registry_dir, decision)
    return decision


def append_decision(registry_dir: Path, decision: dict[str, Any]) -> None:
    """Append one decision as one JSON line (one write, then fsync); never rewrite the log."""
    path = Path(registry_dir) / DECISIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(decision, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a torn last line (crash mid-write): start on a fresh line
        written = os.write(fd, line)
        if written != len(line):  # a short write: finish it (still appending)
            os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0:  # a new file: make its directory entry durable too
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_decisions(registry_dir: Path) -> list[dict[str, Any]]:
    """Every decision in the log, oldest first; a torn (unparseable) line is skipped."""
    path = Path(registry_dir) / DECISIONS_FILE
    if not path.exists():
        return []
    decisions = []
    for line in path.read_text().splitlines():
        try:
            decisions.append(json.loads(line))
        except ValueError:
            continue
    return decisions
