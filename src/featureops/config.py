"""Load ``params.yaml`` and give typed views of the parts stages need."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read the params file; raise ConfigError with the path if it is missing or invalid."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file not found: {path.resolve()}")
    with path.open() as fh:
        params = yaml.safe_load(fh)
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
)


@dataclass(frozen=True)
class SourceSpec:
    """One raw source: where its drops are, their schema and their checks."""

    name: str
    glob: str
    columns: dict[str, str]
    keys: tuple[str, ...]
    timestamp: str
    format: str = "csv"
    created: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, name: str, raw: dict[str, Any]) -> SourceSpec:
        for key in ("glob", "columns", "keys", "timestamp"):
            if key not in raw:
                raise ConfigError(f"params.yaml: sources.{name}.{key} is required")
        keys = raw["keys"]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"params.yaml: sources.{name}.keys must be a list of column names")
        spec = cls(
            name=name,
            glob=raw["glob"],
            columns=dict(raw["columns"]),
            keys=tuple(keys),
            timestamp=raw["timestamp"],
            format=raw.get("format", "csv"),
            created=dict(raw.get("created") or {}),
            checks=dict(raw.get("checks") or {}),
        )
        for col in (*spec.keys, spec.timestamp):
            if col not in spec.columns:
                raise ConfigError(f"params.yaml: sources.{name}: column {col!r} not in columns")
        if spec.format not in ("csv", "parquet"):
            raise ConfigError(f"params.yaml: sources.{name}.format must be csv or parquet")
        return spec


def source_specs(params: dict[str, Any]) -> dict[str, SourceSpec]:
    """All configured sources, by name, in the order declared."""
    sources = params.get("sources")
    if not sources:
        raise ConfigError("params.yaml: no sources configured")
    return {name: SourceSpec.from_params(name, raw) for name, raw in sources.items()}


def stage_params(
    description: str | None, argv: list[str] | None, sections: tuple[str, ...] = ()
) -> tuple[dict[str, Any], Paths]:
    """Parse a DVC stage's command line (``--params``); return the params and their paths.

    Raises ConfigError naming the file if it lacks one of the required ``sections``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default=str(DEFAULT_PARAMS))
    args = parser.parse_args(argv)
    params = load_params(args.params)
    for section in sections:
        if section not in params:
            raise ConfigError(f"{args.params}: no {section} section")
    return params, Paths.from_params(params)
