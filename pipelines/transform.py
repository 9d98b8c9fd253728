"""DVC stage `transform`: validated Parquet -> the feature tables declared in params.yaml."""

from __future__ import annotations

import sys

from featureops.config import ConfigError, stage_params
from featureops.features.build import FeatureBuildError, write_feature_tables
from featureops.io import write_json


def main(argv: list[str] | None = None) -> int:
    try:
        params, paths = stage_params(__doc__, argv)
        summary = write_feature_tables(
            params, paths.validated, paths.features, paths.artifacts / "normalization"
        )
    except (ConfigError, FeatureBuildError, FileNotFoundError) as exc:
        print(f"transform failed: {exc}", file=sys.stderr)
        return 1
    write_json(summary, paths.metrics / "transform.json")
    for table, counts in summary.get("tables", summary).items():
        print(f"transform {table}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
