"""Atomic writes and the one timestamp convention (UTC, microseconds) for every Parquet file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it over ``target`` only on success.

    A crash or exception leaves the previous ``target`` untouched and removes the temp file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_utc_us(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Return ``df`` with datetime columns as ``datetime64[us, UTC]`` (naive ones read as UTC)."""
    out = df.copy()
    cols = (
        columns
        if columns is not None
        else [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c])]
    )
    for col in cols:
        series = pd.to_datetime(out[col], utc=True)
        out[col] = series.astype("datetime64[us, UTC]")
    return out


def arrow_timestamps_to_utc_us(table: pa.Table) -> pa.Table:
    """Cast every timestamp column of an Arrow table to ``timestamp[us, UTC]``."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, TIMESTAMP_TYPE, f.nullable))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields), safe=False)


def write_parquet(data: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write Parquet atomically with UTC microsecond timestamps (see PITFALLS: Feast+DuckDB)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    table = arrow_timestamps_to_utc_us(table)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
    return Path(path)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet`."""
    return pd.read_parquet(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically, sorted keys, trailing newline."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
