"""``python -m featureops.serving [--params params.yaml] [--workers N] [--host H] [--port P]``."""

from __future__ import annotations

import argparse

from featureops.serving.app import run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the production model (uvicorn workers).")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--root", default=".", help="project root the params' paths are under")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int, help="default: serving.workers")
    args = parser.parse_args(argv)
    run(args.params, args.host, args.port, args.workers, args.root)


if __name__ == "__main__":
    main()
