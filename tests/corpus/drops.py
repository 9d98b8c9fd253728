"""Small bad-input drops for the ingest corpus: each builder writes files under a landing dir.

Every drop belongs to one source, ``readings`` (:data:`BASE_SOURCE`); a case changes its
``sources.readings`` settings with :func:`source_params`. Builders return a function of the
landing directory, so each test writes its drop into its own ``tmp_path``.
"""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

SOURCE = "readings"
DAY = "2026-01-01"
CSV_NAME = f"{SOURCE}/{SOURCE}_{DAY}.csv"
PARQUET_NAME = f"{SOURCE}/{SOURCE}_{DAY}.parquet"
COLUMNS = {
    "machine_id": "BIGINT",
    "timestamp": "TIMESTAMPTZ",
    "temperature": "DOUBLE",
    "note": "VARCHAR",
}
HEADER = ",".join(COLUMNS)

BASE_SOURCE: dict[str, Any] = {
    "glob": f"{SOURCE}/*.csv",
    "format": "csv",
    "keys": ["machine_id"],
    "timestamp": "timestamp",
    "created": {"filename_date": r"(\d{4}-\d{2}-\d{2})", "delay_hours": 24},
    "columns": COLUMNS,
    "checks": {
        "unique": ["machine_id", "timestamp"],
        "not_null": ["machine_id", "timestamp"],
    },
}

Builder = Callable[[Path], None]


def source_params(**overrides: Any) -> dict[str, Any]:
    """``sources.readings`` with ``overrides`` (``read`` and ``checks`` are merged key by key)."""
    raw = copy.deepcopy(BASE_SOURCE)
    for key, value in overrides.items():
        if key in ("read", "checks") and isinstance(value, dict):
            raw[key] = {**raw.get(key, {}), **copy.deepcopy(value)}
        else:
            raw[key] = copy.deepcopy(value)
    return raw


def row(
    machine: object = 1,
    hour: int = 0,
    temperature: object = "70.5",
    note: object = "ok",
    timestamp: str | None = None,
    sep: str = ",",
) -> str:
    """One CSV data line; every field can be replaced by raw text."""
    ts = timestamp if timestamp is not None else f"{DAY}T{hour:02d}:00:00Z"
    return sep.join(str(v) for v in (machine, ts, temperature, note))


def good_rows(n: int, first: int = 1) -> list[str]:
    """``n`` clean lines, machines ``first``.., one hour apart."""
    return [row(first + i, hour=i % 24) for i in range(n)]


def write(name: str, data: bytes) -> Builder:
    def build(landing: Path) -> None:
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return build


def csv_bytes(
    lines: Sequence[str],
    header: str | None = HEADER,
    newline: str = "\n",
    encoding: str = "utf-8",
    final_newline: bool = True,
) -> bytes:
    text = newline.join(([header] if header is not None else []) + list(lines))
    if final_newline and text:
        text += newline
    return text.encode(encoding)


def csv_drop(lines: Sequence[str], name: str = CSV_NAME, **kwargs: Any) -> Builder:
    """A CSV drop: ``header`` (None for none) and ``lines``, encoded as asked."""
    return write(name, csv_bytes(lines, **kwargs))


def raw_drop(data: bytes, name: str = CSV_NAME) -> Builder:
    return write(name, data)


def gzip_drop(lines: Sequence[str]) -> Builder:
    """gzip-compressed CSV bytes behind a ``.csv`` name."""
    return write(CSV_NAME, gzip.compress(csv_bytes(lines)))


def several(*builders: Builder) -> Builder:
    def build(landing: Path) -> None:
        for b in builders:
            b(landing)

    return build


def nothing(landing: Path) -> None:
    """No drop at all: the glob matches nothing."""
    landing.mkdir(parents=True, exist_ok=True)


def parquet_drop(frame: Callable[[], pd.DataFrame], name: str = PARQUET_NAME) -> Builder:
    def build(landing: Path) -> None:
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame().to_parquet(path, index=False)

    return build


def parquet_frame(n: int = 4, **columns: Any) -> pd.DataFrame:
    """Clean Parquet readings of the declared types; ``columns`` replace whole columns."""
    df = pd.DataFrame(
        {
            "machine_id": pd.array(range(1, n + 1), dtype="int64"),
            "timestamp": [pd.Timestamp(DAY, tz="UTC") + pd.Timedelta(hours=i) for i in range(n)],
            "temperature": [70.5] * n,
            "note": ["ok"] * n,
        }
    )
    for name, values in columns.items():
        df[name] = values
    return df
