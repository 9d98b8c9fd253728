"""Lineage: where a training frame or model came from, as a JSON manifest.

A manifest records the git commit (and whether the tree was dirty), the DVC hashes of the
data read, the params, the feature service and a fingerprint of its definitions, checksums
of the entity frame and of the result, row count, library versions and creation time.

Data versions are recorded by md5, the hash DVC stores objects under, so any recorded input
can be fetched back without its commit: from the workspace, the DVC cache, or the default
DVC remote (:func:`locate_data`, the one adapter over DVC's Python API).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
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


DVC_STAGE_ENV = "DVC_STAGE"  # DVC sets it for every stage command it runs


class DataNotFoundError(RuntimeError):
    """A recorded data version is in neither the workspace, the DVC cache nor the remote."""


def git_state(root: str | Path = ".") -> dict[str, Any]:
    """The HEAD commit and dirty flag of the repository at ``root`` (None outside git)."""

    def run(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def output_commit(
    root: str | Path = ".", data: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The manifest's ``git`` section: HEAD, dirty flag, and the commit the outputs belong to.

    ``outputs_commit`` is HEAD only when that is certain: a clean tree, not inside a DVC
    stage, and every input (``data``, from :func:`data_versions`) listed in ``dvc.lock``.
    A stage's outputs belong to the commit that will record its ``dvc.lock``, which does not
    exist while it runs: then it is null and ``note`` says why. Inside a DVC stage HEAD and
    the dirty flag are not recorded either (``commit`` and ``dirty`` are null): the manifest
    is part of a DVC-tracked output, and a HEAD in it would make every fresh run's output
    hash differ from the committed ``dvc.lock`` (HEAD is always the commit before the one
    that records the run). Reproducing never needs it (inputs are fetched by md5).
    """
    stage = os.environ.get(DVC_STAGE_ENV) or None
    state = {"commit": None, "dirty": None} if stage else git_state(root)
    commit = state["commit"]
    listed = [v.get("in_dvc_lock") for v in (data or {}).values()]
    by_md5 = (
        "reproduce reads every input by its md5 (workspace, DVC cache, then the default DVC "
        "remote) and does not need this commit"
    )
    outputs = None
    if stage:
        note = (
            f"built by the DVC stage {stage!r}: its outputs belong to the commit that records "
            "this run's dvc.lock, which did not exist yet (find it with `git log -- dvc.lock`); "
            f"{by_md5}"
        )
    elif commit is None:
        note = f"not built inside a git repository; {by_md5}"
    elif state["dirty"]:
        note = (
            f"built in a working tree with uncommitted changes on top of commit {commit[:12]}; "
            f"{by_md5} (`git commit` and `dvc push` to share them)"
        )
    elif False in listed:
        note = (
            f"the git tree is clean at {commit[:12]} but some inputs are not the versions its "
            f"dvc.lock records (see data.*.in_dvc_lock); {by_md5}"
        )
    elif None in listed:
        note = (
            f"the git tree is clean at {commit[:12]} but some inputs cannot be checked against "
            f"its dvc.lock (their directory listing is not in the local DVC cache); {by_md5}"
        )
    else:
        outputs = commit
        note = f"the inputs are the data versions recorded by dvc.lock at commit {commit[:12]}"
    return {**state, "dvc_stage": stage, "outputs_commit": outputs, "note": note}


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


def _default_cache_dir(root: Path) -> Path | None:
    """DVC's local cache of md5 objects (``.dvc/cache/files/md5``; None if configured elsewhere).

    Only the default layout is read here (cheap, no DVC import); :func:`locate_data` asks
    DVC itself.
    """
    for name in ("config.local", "config"):
        config = root / ".dvc" / name
        if config.exists() and re.search(
            r"(?m)^\s*\[\s*cache\s*\][^\[]*^\s*dir\s*=", config.read_text()
        ):
            return None
    return root / ".dvc" / "cache" / "files" / "md5"


def _dir_listing(root: Path, dir_md5: str) -> dict[str, str] | None:
    """relpath -> md5 of a DVC directory object in the local cache (None if not there)."""
    cache = _default_cache_dir(root)
    if cache is None:
        return None
    path = cache / dir_md5[:2] / dir_md5[2:]
    try:
        return {e["relpath"]: e["md5"] for e in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _in_dvc_lock(root: Path, rel: str, md5: str, owner: dict[str, Any] | None) -> bool | None:
    """Whether ``dvc.lock`` records exactly these bytes for ``rel`` (None: cannot tell)."""
    if owner is None or not owner.get("md5"):
        return False
    if not str(owner["md5"]).endswith(".dir"):
        return owner["md5"] == md5
    listing = _dir_listing(root, str(owner["md5"]))
    if listing is None:
        return None
    return listing.get(rel[len(owner["dvc_out"].rstrip("/")) + 1 :]) == md5


def data_versions(files: list[Path], root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """For each data file read: its md5, the ``dvc.lock`` output that contains it, and
    whether ``dvc.lock`` records exactly this version of it (``in_dvc_lock``)."""
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
        md5 = file_md5(path)
        versions[rel] = {
            "md5": md5,
            "dvc": owner,
            "in_dvc_lock": _in_dvc_lock(root, rel, md5, owner),
        }
    return versions


def locate_data(
    root: str | Path, md5: str, candidates: list[Path] | tuple[Path, ...] = (), what: str = ""
) -> tuple[Path, str]:
    """A local file whose bytes have ``md5``, and where it was found.

    Looks at ``candidates`` (workspace files), then DVC's local cache, then pulls the object
    from the default DVC remote into the cache. A file inside a directory output is stored
    by its own md5 too, so this works for single files of ``data/features/``. No git
    revision is involved. Raises :class:`DataNotFoundError` when the version is nowhere.
    """
    for path in candidates:
        path = Path(path)
        if path.is_file() and file_md5(path) == md5:
            return path, "workspace"
    label = what or md5
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise DataNotFoundError(
            f"{label} (md5 {md5}) changed and {root} is not a DVC repository to fetch it from"
        ) from None
    with repo:
        cached = Path(repo.cache.local.oid_to_path(md5))
        if cached.is_file():
            if file_md5(cached) == md5:
                return cached, "dvc at cache"
            raise DataNotFoundError(
                f"{label}: the DVC cache object {cached} is corrupt (md5 differs): delete it "
                "and retry to fetch it from the remote"
            )
        return _pull(repo, md5, cached, label)


def _pull(repo: Any, md5: str, cached: Path, label: str) -> tuple[Path, str]:
    """Fetch one md5 object from the default remote into the local cache."""
    from dvc.config import NoRemoteError
    from dvc_data.hashfile.hash_info import HashInfo

    missing = f"{label} (md5 {md5}) is in neither the workspace nor the DVC cache"
    try:
        remote = repo.cloud.get_remote(command="fetch")
    except NoRemoteError:
        raise DataNotFoundError(f"{missing}, and no default DVC remote is configured") from None
    where = f"remote {remote.name!r} ({remote.fs.unstrip_protocol(remote.path)})"  # s3://..
    check = (
        "check the remote's URL, endpoint and credentials (`dvc remote list`, "
        "`dvc remote modify --local <name> access_key_id ...` or AWS_* variables)"
    )
    try:
        result = repo.cloud.pull([HashInfo("md5", md5)], remote=remote.name)
    except Exception as exc:  # any remote backend error: report it with the object's name
        raise DataNotFoundError(
            f"{missing}, and fetching it from {where} failed: {exc}; {check}"
        ) from exc
    if not cached.is_file():
        if result.failed:  # DVC logged the transfer error and went on: ask the remote once more
            reason = _remote_error(remote, md5) or "see DVC's error above"
            raise DataNotFoundError(
                f"{missing}, and fetching it from {where} failed: {reason}; {check}"
            )
        raise DataNotFoundError(f"{missing} nor on {where}: run `dvc push` in a clone that has it")
    if file_md5(cached) != md5:
        raise DataNotFoundError(f"{label}: the object fetched from {where} has another md5")
    return cached, f"dvc at remote {remote.name!r}"


def _remote_error(remote: Any, md5: str) -> str | None:
    """The error the remote gives when asked about one object (None if it answers).

    ``fs.info`` rather than ``exists``: fsspec's ``exists``/``isfile`` turn every error
    (missing credentials included) into False."""
    try:
        remote.fs.info(remote.odb.oid_to_path(md5))
    except FileNotFoundError:
        return None
    except Exception as exc:  # the backend's own error (credentials, endpoint, bucket)
        return str(exc) or type(exc).__name__
    return None


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


def now_utc() -> str | None:
    """Creation time for manifests, ISO 8601 UTC; None inside a DVC stage.

    A stage's manifests are part of its DVC-tracked outputs: a wall-clock time there would
    make every run's output hash differ (a fresh ``dvc repro`` could never reproduce the
    committed ``dvc.lock``). When a stage ran is when the commit that records it was made.
    """
    if os.environ.get(DVC_STAGE_ENV):
        return None
    return datetime.now(UTC).isoformat()


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Load a lineage manifest JSON."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest not found: {path}")
    return json.loads(path.read_text())
