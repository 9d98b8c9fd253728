"""DVC stage `transform`: validated Parquet -> Feast-ready feature tables + normalization stats."""

from __future__ import annotations

import argparse
import sys

from featureops import catalog
from featureops.config import ConfigError, Paths, load_params, source_specs
from featureops.transform import write_features, write_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    paths = Paths.from_params(params)
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
