"""DVC stage `ingest`: raw drops -> typed, deduplicated Parquet per source + quarantine.

Bad input never ends in a traceback: a file that cannot be ingested (or a bad setting) stops
the stage with one line on stderr naming the file and the setting or check, exit status 1, and
nothing is written. Outputs are replaced together, atomically (``featureops.io.staged_outputs``):
a killed run leaves the previous version.
"""

from __future__ import annotations

import sys

import yaml

from featureops.config import ConfigError, source_specs, stage_params
from featureops.ingest import IngestError, ingest_source, one_line
from featureops.io import staged_outputs, write_json, write_parquet
from pipelines import summarize


def main(argv: list[str] | None = None) -> int:
    try:
        params, paths = stage_params(__doc__, argv)
        naive_tz = (params.get("ingest") or {}).get("naive_timezone", "UTC")
        results = [
            ingest_source(spec, paths.landing, naive_tz)
            for spec in source_specs(params, for_ingest=True).values()
        ]
    except (IngestError, ConfigError, yaml.YAMLError) as exc:
        print(f"ingest failed: {one_line(exc)}", file=sys.stderr)
        return 1
    summary = {r.source: r.stats for r in results}
    summary["total"] = {
        k: sum(r.stats[k] for r in results) for k in ("rows_in", "accepted", "quarantined")
    }
    quarantine, metrics = paths.quarantine / "ingest", paths.metrics / "ingest.json"
    metric = summarize.summary_path(paths.metrics, "ingest")  # the DVC metric
    # write only once every source has parsed; replace the previous version as a whole
    with staged_outputs(dirs=[paths.interim, quarantine], files=[metrics, metric]) as out:
        for result in results:
            write_parquet(result.accepted, out.path(paths.interim) / f"{result.source}.parquet")
            write_parquet(result.quarantined, out.path(quarantine) / f"{result.source}.parquet")
        write_json(summary, out.path(metrics))
        write_json(summarize.ingest(summary), out.path(metric))
    for r in results:
        print(f"ingest {r.source}: {r.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
