"""DVC stage `validate`: Great Expectations suites per source; quarantine failing rows.

A batch that fails (or a bad setting) stops the stage with one line on stderr naming the source,
the file and the check, exit status 1, and nothing is written. The validated Parquet, the
quarantine and the metrics are replaced together, atomically (``featureops.io.staged_outputs``):
a failed or killed run leaves the previous version.
"""

from __future__ import annotations

import sys
import time

import yaml

from featureops.config import ConfigError, stage_params
from featureops.ingest import one_line
from featureops.io import staged_outputs, write_json
from featureops.validation import (
    METRICS_FILE,
    STAGE,
    BatchValidationError,
    parse_reference_time,
    run_validate,
)
from pipelines import summarize


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    try:
        params, paths = stage_params(__doc__, argv)
        reference = parse_reference_time((params.get("validate") or {}).get("reference_time"))
        quarantine, metrics = paths.quarantine / STAGE, paths.metrics / METRICS_FILE
        metric = summarize.summary_path(paths.metrics, STAGE)  # the DVC metric
        files = [metrics, metric]
        with staged_outputs(dirs=[paths.validated, quarantine], files=files) as out:
            # run_validate writes <validated>/, <quarantine>/validate/ and <metrics>/validate.json
            # (every check's result: details, not a DVC metric)
            params["paths"] = {
                **params["paths"],
                "validated": str(out.path(paths.validated)),
                "quarantine": str(out.container(quarantine)),
                "metrics": str(out.container(metrics)),
            }
            summary = run_validate(params, reference_time=reference)
            write_json(summarize.validate(summary), out.path(metric))
    except (BatchValidationError, ConfigError, ValueError, yaml.YAMLError) as exc:
        print(f"validate failed: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"validate: reference time {reference.isoformat()}")
    for source, m in summary.items():
        print(
            f"validate {source}: {m['rows_in']} in, {m['accepted']} accepted, "
            f"{m['quarantined']} quarantined ({m['bad_row_share']:.2%})"
        )
    print(f"validate: done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
