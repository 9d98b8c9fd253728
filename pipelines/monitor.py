"""DVC stage `monitor`: drift of recent data against the watched model's training reference."""

from __future__ import annotations

import sys

import pandas as pd

from featureops import catalog
from featureops.config import stage_params
from featureops.drift_report import render_report
from featureops.frames import open_store
from featureops.io import write_json, write_text
from featureops.monitoring import current_window, monitor, summary_metrics, watched_model


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    cfg = params["monitor"]
    store = open_store(params["feast"]["repo"])
    watched = watched_model(paths.registry, paths.candidate)
    labels = pd.read_parquet(catalog.feature_table_path(params, catalog.LABEL_TABLE))
    label_end = labels[catalog.EVENT_TIMESTAMP].max() + pd.Timedelta(microseconds=1)
    current = current_window(
        store,
        watched.manifest["feature_service"],
        params["train"]["label_view"],
        label_end,
        float(cfg["current_days"]),
    )
    horizon = pd.Timedelta(hours=params["transform"]["label_horizon_hours"])
    result = monitor(watched, current, cfg, catalog.label_column(params), label_end - horizon)
    write_json(summary_metrics(result), paths.metrics / "monitor.json")
    report = write_text(render_report(result), paths.reports / "drift_report.html")
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
