"""DVC stage `feast_apply`: apply the Feast definitions; replace the registry atomically.

Runs Feast's own apply into a fresh registry beside the real one and renames it over
``registry.db`` only if its canonical bytes differ (:mod:`featureops.store.registry`): the
registry is never absent or half-written for a server reading it, re-applying unchanged
definitions changes nothing, and no table outside this project's online store is touched.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Feast pickles on-demand functions with dill, whose bytes follow set order: a fixed
        # hash seed makes the same definitions give the same registry bytes.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "pipelines.feast_apply", *sys.argv[1:]])

    from featureops.config import ConfigError, load_params
    from featureops.store.registry import apply_repo

    try:
        repo = load_params(args.params)["feast"]["repo"]
    except (ConfigError, KeyError) as exc:
        print(f"feast_apply: {args.params}: no feast.repo ({exc})", file=sys.stderr)
        return 2
    result = apply_repo(repo)
    state = "replaced" if result.changed else "unchanged (same definitions)"
    print(f"feast_apply: registry {result.registry} {state} in {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
