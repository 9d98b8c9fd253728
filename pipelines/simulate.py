"""DVC stage `simulate`: write the deterministic demo fleet's raw drops to the landing zone."""

from __future__ import annotations

import json
import sys

from featureops.config import ConfigError, stage_params
from featureops.io import write_json
from featureops.simulate import simulate_fleet


def main(argv: list[str] | None = None) -> int:
    try:
        params, paths = stage_params(__doc__, argv, sections=("simulate",))
        summary = simulate_fleet(params["simulate"], paths.landing, params.get("sources"))
    except ConfigError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    write_json(summary, paths.metrics / "simulate.json")
    print(f"simulate: wrote {paths.landing}: {json.dumps(summary, sort_keys=True)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
