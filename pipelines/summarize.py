"""One small DVC metric per stage, read at a glance; the details stay in a file that is not one.

Each stage writes its detailed results to ``${paths.metrics}/<stage>.json`` (per source,
per check, per view, per feature: a plain DVC output, committed, diffable) and a summary
to ``${paths.metrics}/summary/<stage>.json``, the only files ``dvc.yaml`` declares as
metrics. The data stages' summaries share their key names (``rows_in``, ``accepted``,
``quarantined``, ``checks_failed``, ...), so ``dvc metrics show`` is one narrow table with a
row per stage; the model's (``pr_auc``, ``roc_auc``, ...) are listed first in ``dvc.yaml``,
so ``dvc exp show`` starts with them. A summary holds only what a fresh run reproduces: no timings, no wall-clock
times, no reasons that depend on earlier runs.

Most stages call these functions themselves; for stages whose entry point lives elsewhere,
``python -m pipelines.summarize <stage>`` derives the summary from the details file (and
drops run-time fields such as ``seconds`` from it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from featureops.config import load_params
from featureops.io import staged_outputs, write_json

SUMMARY_DIR = "summary"
# Per-run values that must not be in a DVC-tracked file: the next run differs by them alone.
RUN_TIME_FIELDS = ("seconds",)


def summary_path(metrics_dir: Path, stage: str) -> Path:
    """``${paths.metrics}/summary/<stage>.json``."""
    return Path(metrics_dir) / SUMMARY_DIR / f"{stage}.json"


def _round(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def simulate(details: dict[str, Any]) -> dict[str, Any]:
    """Lines written (all sources, defects included) and defects injected."""
    rows = details["rows"]
    return {
        "rows_out": sum(v for k, v in rows.items() if k != "sensor_readings"),
        "defects": sum(details["defects"].values()),
    }


def ingest(details: dict[str, Any]) -> dict[str, Any]:
    """Rows read, accepted and quarantined over every source."""
    total = details["total"]
    return {k: total[k] for k in ("rows_in", "accepted", "quarantined")}


def failed_checks(source: dict[str, Any]) -> list[str]:
    """The expectations of one source's validation that failed or flagged any row."""
    return sorted(
        name
        for name, result in (source.get("expectations") or {}).items()
        if not result.get("success", True) or result.get("unexpected")
    )


def validate(details: dict[str, Any]) -> dict[str, Any]:
    """Rows in, accepted, quarantined; checks (expectations) that flagged a row, all sources."""
    total = details["total"]
    sources = [v for k, v in details.items() if k != "total" and isinstance(v, dict)]
    return {
        **{k: total[k] for k in ("rows_in", "accepted", "quarantined")},
        "checks_failed": sum(len(failed_checks(s)) for s in sources),
    }


def transform(details: dict[str, Any]) -> dict[str, Any]:
    """Validated rows read, feature rows written (all tables)."""
    tables = details["tables"]
    return {
        "rows_in": sum(details["sources"].values()),
        "rows_out": sum(t["rows_out"] for t in tables.values()),
    }


def materialize(details: dict[str, Any]) -> dict[str, Any]:
    """Rows scanned and entities online after the run (all views)."""
    views = [v for v in details.values() if isinstance(v, dict)]
    return {
        "rows_in": sum(v.get("rows_in_window") or 0 for v in views),
        "entities": sum(v.get("online_entities") or 0 for v in views),
    }


def evaluate(details: dict[str, Any]) -> dict[str, Any]:
    """The candidate on the evaluation window, and the prevalence baseline's PR AUC."""
    model = details["model"]
    out = {k: _round(model[k]) for k in ("pr_auc", "roc_auc", "f1")}
    out["baseline_pr_auc"] = _round(details["baseline_prevalence"]["pr_auc"])
    return out


def monitor(details: dict[str, Any]) -> dict[str, Any]:
    """Alert, drifted features, prediction PSI, PR AUC on the recent window, its relative drop."""
    return {
        "alert": details["alert"],
        "drifted": len(details.get("drifted_features") or []),
        "prediction_psi": _round(details.get("prediction_psi")),
        "window_pr_auc": _round(details.get("pr_auc_current")),
        "pr_auc_drop": _round(details.get("pr_auc_relative_drop")),
    }


SUMMARIES = {
    "simulate": simulate,
    "ingest": ingest,
    "validate": validate,
    "transform": transform,
    "materialize": materialize,
    "evaluate": evaluate,
    "monitor": monitor,
}


def without_run_time(details: Any) -> Any:
    """``details`` without per-run timings (``seconds``), at any depth."""
    if isinstance(details, dict):
        return {k: without_run_time(v) for k, v in details.items() if k not in RUN_TIME_FIELDS}
    if isinstance(details, list):
        return [without_run_time(v) for v in details]
    return details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=sorted(SUMMARIES))
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    metrics_dir = Path(load_params(args.params)["paths"]["metrics"])
    details_file = metrics_dir / f"{args.stage}.json"
    details = json.loads(details_file.read_text())
    clean = without_run_time(details)
    summary_file = summary_path(metrics_dir, args.stage)
    with staged_outputs(files=[details_file, summary_file]) as out:
        write_json(clean, out.path(details_file))
        write_json(SUMMARIES[args.stage](clean), out.path(summary_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
