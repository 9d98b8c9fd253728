"""Load ``params.yaml``, resolve its paths and parse a DVC stage's command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from featureops.config.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read the params file; raise ConfigError with the path if it is missing or invalid."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file not found: {path.resolve()}")
    try:
        with path.open() as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: not valid YAML ({problem})") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping at top level")
    return params


@dataclass(frozen=True)
class Paths:
    """Data locations, resolved against a root directory."""

    root: Path
    landing: Path
    interim: Path
    validated: Path
    quarantine: Path
    features: Path
    artifacts: Path
    reports: Path
    metrics: Path
    plots: Path
    frames: Path
    candidate: Path
    registry: Path
    feature_log: Path
    labels: Path

    @classmethod
    def from_params(cls, params: dict[str, Any], root: str | Path = ".") -> Paths:
        root = Path(root)
        try:
            raw = params["paths"]
            return cls(root=root, **{k: root / raw[k] for k in _PATH_KEYS})
        except KeyError as exc:
            raise ConfigError(f"params.yaml: missing paths.{exc.args[0]}") from exc


_PATH_KEYS = (
    "landing",
    "interim",
    "validated",
    "quarantine",
    "features",
    "artifacts",
    "reports",
    "metrics",
    "plots",
    "frames",
    "candidate",
    "registry",
    "feature_log",
    "labels",
)


def stage_params(
    description: str | None, argv: list[str] | None, sections: tuple[str, ...] = ()
) -> tuple[dict[str, Any], Paths]:
    """Parse a DVC stage's command line (``--params``); return the params and their paths.

    The whole file is checked against :mod:`featureops.config.schema` first, so a bad knob
    stops any stage with one line naming the key. Raises ConfigError naming the file if it
    lacks one of the required ``sections``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    for section in sections:
        if section not in params:
            raise ConfigError(f"{args.params}: no {section} section")
    from featureops.config.schema import check_params  # pydantic: only stages pay for it

    check_params(params, args.params)
    return params, Paths.from_params(params)
