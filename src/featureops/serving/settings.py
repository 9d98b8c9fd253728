"""What the service needs from ``params.yaml`` (``serving``, ``paths``, ``feast.repo``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from featureops.config import Paths


def _utc(value: Any) -> datetime:
    ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class ServingSettings:
    """Service settings. Every ``serving.*`` key has a default except the paths."""

    feature_repo: Path
    registry: Path
    feature_log: Path
    metrics_dir: Path
    max_ids: int = 100
    reference_time: datetime | None = None  # null: wall clock
    api_key_env: str | None = None
    flush_rows: int = 1000
    flush_seconds: float = 30.0
    refresh_seconds: float = 10.0  # how often workers look for a new model / registry / store
    max_body_bytes: int = 64 * 1024
    workers: int = 2
    host: str = "127.0.0.1"
    port: int = 8000

    @classmethod
    def from_params(cls, params: dict[str, Any], root: str | Path = ".") -> ServingSettings:
        paths = Paths.from_params(params, root)
        cfg = params.get("serving") or {}
        ref = cfg.get("reference_time")
        return cls(
            feature_repo=Path(root) / params["feast"]["repo"],
            registry=paths.registry,
            feature_log=paths.feature_log,
            metrics_dir=paths.metrics,
            max_ids=int(cfg.get("max_ids", 100)),
            reference_time=_utc(ref) if ref else None,
            api_key_env=cfg.get("api_key_env"),
            flush_rows=int(cfg.get("log_flush_rows", 1000)),
            flush_seconds=float(cfg.get("log_flush_seconds", 30)),
            refresh_seconds=float(cfg.get("refresh_seconds", 10)),
            max_body_bytes=int(cfg.get("max_body_bytes", 64 * 1024)),
            workers=int(cfg.get("workers", min(2, os.cpu_count() or 1))),
            host=str(cfg.get("host", "127.0.0.1")),
            port=int(cfg.get("port", 8000)),
        )

    def now(self) -> datetime:
        """The time features are judged against (staleness) and logged with."""
        return self.reference_time or datetime.now(UTC)
