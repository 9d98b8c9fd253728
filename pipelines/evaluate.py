"""DVC stage `evaluate`: the candidate on the later time window vs a trivial baseline.

The metrics and plots are replaced together, atomically (``featureops.io.staged_outputs``).
"""

from __future__ import annotations

import sys

import pandas as pd

from featureops.config import stage_params
from featureops.io import staged_outputs, write_json
from featureops.labels import LabelSpec
from featureops.registry import load_model
from featureops.training import (
    baseline_proba,
    classification_metrics,
    curves,
    predict_proba,
    split_time,
    time_split,
)
from pipelines import summarize


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    cfg = params["train"]
    spec = LabelSpec.from_params(params)
    label = spec.name
    model, manifest = load_model(paths.candidate)
    frame = pd.read_parquet(paths.frames / "train.parquet")
    split = time_split(frame, split_time(frame, cfg), spec.horizon)
    y = split.evaluate[label].astype(int).to_numpy()
    p = predict_proba(model, split.evaluate)
    threshold = float(cfg["threshold"])
    metrics = {
        "model": classification_metrics(y, p, threshold),
        "baseline_prevalence": classification_metrics(
            y, baseline_proba(split.train[label], len(y)), threshold
        ),
        "threshold": threshold,
        "model_sha256": manifest["sha256"],
        "eval_window": [
            str(split.evaluate.event_timestamp.min()),
            str(split.evaluate.event_timestamp.max()),
        ],
    }
    plots = {paths.plots / f"{name}.json": rows for name, rows in curves(y, p, threshold).items()}
    metrics_file = paths.metrics / "evaluate.json"
    metric = summarize.summary_path(paths.metrics, "evaluate")  # the DVC metric
    with staged_outputs(files=[metrics_file, metric, *plots]) as out:
        write_json(metrics, out.path(metrics_file))
        write_json(summarize.evaluate(metrics), out.path(metric))
        for path, rows in plots.items():
            write_json(rows, out.path(path))
    m, b = metrics["model"], metrics["baseline_prevalence"]
    print(
        f"evaluate: model ROC AUC {m['roc_auc']:.3f} PR AUC {m['pr_auc']:.3f} F1 {m['f1']:.3f}; "
        f"baseline ROC AUC {b['roc_auc']:.3f} PR AUC {b['pr_auc']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
