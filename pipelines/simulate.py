"""DVC stage `simulate`: write the deterministic demo fleet's raw drops to the demo's folder.

The demo owns only its own folder (``--out``, default ``data/demo/landing``); point
``paths.landing`` at it to run the demo, or at your own folder and remove this stage
(``dvc remove simulate``): no stage ever writes into a user's landing zone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from featureops.config import ConfigError, load_params
from featureops.io import staged_outputs, write_json
from featureops.simulate import simulate_fleet
from pipelines import summarize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="data/demo/landing", help="the demo's drop folder")
    parser.add_argument("--metrics", default="metrics/simulate.json", help="details")
    parser.add_argument(
        "--summary", default="metrics/summary/simulate.json", help="the DVC metric (a summary)"
    )
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if "simulate" not in params:
            raise ConfigError(f"{args.params}: no simulate section")
        summary = simulate_fleet(params["simulate"], Path(args.out))
    except ConfigError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    with staged_outputs(files=[args.metrics, args.summary]) as out:
        write_json(summary, out.path(args.metrics))
        write_json(summarize.simulate(summary), out.path(args.summary))
    print(f"simulate: wrote {args.out}: {json.dumps(summary, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
