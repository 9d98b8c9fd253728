"""DVC stage `monitor`: drift of recent data against the watched model's training reference."""

from __future__ import annotations

import sys

import pandas as pd

from featureops.config import stage_params
from featureops.conventions import EVENT_TIMESTAMP
from featureops.drift_report import render_report
from featureops.frames import FrameError, compile_plan, open_store
from featureops.io import staged_outputs, write_json, write_text
from featureops.labels import LabelSpec, label_rows
from featureops.monitoring import current_window, monitor, summary_metrics, watched_model
from featureops.store.registry import RegistryLocationError, check_registry_location
from pipelines import summarize


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    cfg = params["monitor"]
    label = LabelSpec.from_params(params)
    try:
        store = open_store(params["feast"]["repo"])
        check_registry_location(store)
    except (FrameError, RegistryLocationError) as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 1
    watched = watched_model(paths.registry, paths.candidate)
    service = watched.manifest["feature_service"]
    rows = label_rows(label, paths, compile_plan(store, service).join_keys)
    known_at = bool(params["train"]["as_known_at"])  # retrieve as the training frame was
    current = current_window(store, service, rows, float(cfg["current_days"]), known_at)
    label_end = rows[EVENT_TIMESTAMP].max() + pd.Timedelta(microseconds=1)
    result = monitor(watched, current, cfg, label.name, label_end - label.horizon)
    metrics = paths.metrics / "monitor.json"  # per feature: details, read by the service
    metric = summarize.summary_path(paths.metrics, "monitor")  # the DVC metric
    details = {**summary_metrics(result), "current_rows": result["current_rows"]}
    report = paths.reports / "drift_report.html"
    with staged_outputs(files=[metrics, metric, report]) as out:  # swapped in together
        write_json(details, out.path(metrics))
        write_json(summarize.monitor(details), out.path(metric))
        write_text(render_report(result), out.path(report))
    status = "ALERT" if result["alert"] else "ok"
    print(
        f"monitor [{status}] against {result['model']}: drifted features "
        f"{result['drifted_features'] or 'none'}; prediction PSI {result['prediction']['psi']:.3f}; "
        f"performance drop: {result['performance_drop']}. Report: {report}"
    )
    if result["alert"]:
        print(
            "monitor: drift or performance drop detected; retrain with `featureops retrain`",
            file=sys.stderr,
        )
        if cfg.get("fail_on_alert"):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
