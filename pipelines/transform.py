"""DVC stage `transform`: validated Parquet -> Feast-ready feature tables + normalization stats."""

from __future__ import annotations

import sys

from featureops import catalog
from featureops.config import ConfigError, source_specs, stage_params
from featureops.transform import write_features, write_metrics


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    try:
        summary = write_features(
            params,
            paths.validated,
            source_specs(params),
            paths.features,
            paths.artifacts / catalog.NORMALIZATION_FILE,
        )
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"transform failed: {exc}", file=sys.stderr)
        return 1
    write_metrics(summary, paths.metrics / "transform.json")
    print(f"transform: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
