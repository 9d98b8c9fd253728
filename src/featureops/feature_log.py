"""Log the feature vectors the service served, to Parquet parts, batched and flushed safely.

Rows are buffered in memory and written as ``part-<time>-<seq>.parquet`` when the buffer
reaches ``flush_rows`` or its oldest row is older than ``flush_seconds`` (checked on each
write), and on shutdown. Each part is written atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from featureops.io import write_parquet


class FeatureLogger:
    """A thread-safe buffered writer of served feature vectors."""

    def __init__(self, directory: str | Path, flush_rows: int = 1000, flush_seconds: float = 30.0):
        self.directory = Path(directory)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._rows: list[dict[str, Any]] = []
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._seq = 0

    def log(self, rows: list[dict[str, Any]]) -> None:
        """Buffer rows; flush if the buffer is full or old enough."""
        with self._lock:
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.extend(rows)
            due = len(self._rows) >= self.flush_rows or (
                self._oldest is not None and time.monotonic() - self._oldest >= self.flush_seconds
            )
            if due:
                self._flush_locked()

    def flush(self) -> Path | None:
        """Write whatever is buffered; return the part written, if any."""
        with self._lock:
            return self._flush_locked()

    def _flush_locked(self) -> Path | None:
        if not self._rows:
            return None
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"part-{stamp}-{self._seq:06d}.parquet"
        write_parquet(pd.DataFrame(self._rows), path)
        self._rows = []
        self._oldest = None
        return path


def read_feature_log(directory: str | Path) -> pd.DataFrame:
    """All logged rows, oldest part first."""
    parts = sorted(Path(directory).glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no feature log parts in {directory}")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
