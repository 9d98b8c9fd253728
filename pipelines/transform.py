"""DVC stage `transform`: validated Parquet -> the feature tables declared in params.yaml.

Computed by DuckDB, or by Spark with ``transform.engine: spark`` (settings under
``transform.spark``; the files written are the same, see docs/feature-tables.md).

The tables, their normalization statistics and the metrics are replaced together, atomically
(``featureops.io.staged_outputs``): a failed or killed run leaves the previous version.
"""

from __future__ import annotations

import sys

from featureops.config import ConfigError, stage_params
from featureops.features.build import FeatureBuildError, write_feature_tables
from featureops.io import staged_outputs, write_json


def main(argv: list[str] | None = None) -> int:
    try:
        params, paths = stage_params(__doc__, argv)
        stats, metrics = paths.artifacts / "normalization", paths.metrics / "transform.json"
        with staged_outputs(dirs=[paths.features, stats], files=[metrics]) as out:
            summary = write_feature_tables(
                params, paths.validated, out.path(paths.features), out.path(stats)
            )
            write_json(summary, out.path(metrics))
    except (ConfigError, FeatureBuildError, FileNotFoundError) as exc:
        print(f"transform failed: {exc}", file=sys.stderr)
        return 1
    for table, counts in summary.get("tables", summary).items():
        print(f"transform {table}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
