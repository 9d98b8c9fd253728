"""DVC stage `ingest`: raw drops -> typed, deduplicated Parquet per source + quarantine."""

from __future__ import annotations

import sys

from featureops.config import source_specs, stage_params
from featureops.ingest import IngestError, ingest_source
from featureops.io import write_json, write_parquet


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    naive_tz = params.get("ingest", {}).get("naive_timezone", "UTC")
    try:
        results = [
            ingest_source(spec, paths.landing, naive_tz) for spec in source_specs(params).values()
        ]
    except IngestError as exc:
        print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    for result in results:  # write only once every source has parsed
        write_parquet(result.accepted, paths.interim / f"{result.source}.parquet")
        write_parquet(result.quarantined, paths.quarantine / "ingest" / f"{result.source}.parquet")
    summary = {r.source: r.stats for r in results}
    summary["total"] = {
        k: sum(r.stats[k] for r in results) for k in ("rows_in", "accepted", "quarantined")
    }
    write_json(summary, paths.metrics / "ingest.json")
    for r in results:
        print(f"ingest {r.source}: {r.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
