"""Lineage: where a training frame or model came from, as a JSON manifest.

A manifest records the git commit (and whether the tree was dirty), the DVC hashes of the
data read, the params, the feature service and a fingerprint of its definitions, checksums
of the entity frame and of the result, row count, library versions and creation time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

LIBRARIES = (
    "featureops",
    "feast",
    "dvc",
    "duckdb",
    "pandas",
    "numpy",
    "pyarrow",
    "great-expectations",
    "scikit-learn",
)


def git_state(root: str | Path = ".") -> dict[str, Any]:
    """The HEAD commit and dirty flag of the repository at ``root`` (None outside git)."""

    def run(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def file_md5(path: str | Path) -> str:
    """md5 of a file's bytes: the hash DVC records for it."""
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dvc_lock_outs(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """Every output recorded in ``dvc.lock``: path -> {stage, md5 (or .dir hash), size}."""
    lock = Path(root) / "dvc.lock"
    if not lock.exists():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    outs = {}
    for stage, body in stages.items():
        for out in body.get("outs", []):
            outs[out["path"]] = {"stage": stage, "md5": out.get("md5"), "size": out.get("size")}
    return outs


def data_versions(files: list[Path], root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """For each data file read: its md5 and the ``dvc.lock`` output that contains it."""
    root = Path(root).resolve()
    outs = dvc_lock_outs(root)
    versions = {}
    for path in files:
        path = Path(path).resolve()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        owner = next(
            (
                {"dvc_out": out, **info}
                for out, info in outs.items()
                if rel == out or rel.startswith(out.rstrip("/") + "/")
            ),
            None,
        )
        versions[rel] = {"md5": file_md5(path), "dvc": owner}
    return versions


def frame_sha256(df: pd.DataFrame) -> str:
    """sha256 of a frame independent of row and column order (a canonical sort).

    Columns are hashed by name and value, not by pandas dtype: integers (nullable or not)
    as int64, floats as float64, timestamps as UTC epoch microseconds, everything else as
    UTF-8 text, each with its null mask. Vectorized: no per-value text formatting.
    """
    canonical = df[sorted(df.columns)]
    canonical = canonical.sort_values(
        list(canonical.columns), kind="mergesort", na_position="last"
    ).reset_index(drop=True)
    digest = hashlib.sha256(f"rows={len(canonical)}".encode())
    for name in canonical.columns:
        kind, data, nulls = _canonical_column(canonical[name])
        digest.update(f"\x00{name}\x00{kind}\x00".encode())
        digest.update(np.packbits(nulls).tobytes())
        digest.update(data)
    return digest.hexdigest()


def _canonical_column(col: pd.Series) -> tuple[str, bytes, np.ndarray]:
    """(kind, value bytes with nulls zeroed, null mask) of one column."""
    nulls = col.isna().to_numpy()
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        utc = col.dt.tz_convert("UTC").dt.tz_localize(None) if col.dt.tz is not None else col
        micros = utc.to_numpy(dtype="datetime64[us]").view("int64")
        return "timestamp_us", np.where(nulls, 0, micros).astype("<i8").tobytes(), nulls
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_integer_dtype(col.dtype):
        ints = col.to_numpy(dtype="int64", na_value=0)
        return "int64", ints.astype("<i8").tobytes(), nulls
    if pd.api.types.is_float_dtype(col.dtype):
        floats = col.to_numpy(dtype="float64", na_value=np.nan)
        return "float64", np.where(nulls, 0.0, floats).astype("<f8").tobytes(), nulls
    texts = [b"" if null else str(v).encode() for v, null in zip(col.tolist(), nulls, strict=True)]
    lengths = np.array([len(t) for t in texts], dtype="<i8")
    return "text", lengths.tobytes() + b"".join(texts), nulls


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the data."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now_utc() -> str:
    """Creation time for manifests, ISO 8601 UTC."""
    return datetime.now(UTC).isoformat()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a lineage manifest JSON."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest not found: {path}")
    return json.loads(path.read_text())
