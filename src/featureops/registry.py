"""A file-based model registry that fits DVC.

``models/candidate/`` is the train stage's DVC output. Registering copies it to
``models/registry/<version>/`` (v1, v2, ...); ``models/registry/production.json`` points at
the version in production and keeps the history for rollbacks. Every load checks the
artifact's sha256 against its manifest: a tampered or half-copied model is refused.
Track the registry with ``dvc add models/registry`` to version it with the data.

A model directory keeps a copy of its training frame's lineage manifest
(``frame.manifest.json``): the frame path a model names is overwritten by the next
``dvc repro``, the copy is not, so ``featureops reproduce models/registry/v1/model.manifest.json``
rebuilds the exact frame v1 was trained on. Every manifest and pointer is written atomically;
changes to a registry are serialized by a lock file (``.lock``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib

try:  # POSIX; elsewhere registry changes are not serialized between processes
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from featureops import io as featureops_io
from featureops.io import atomic_path, write_json
from featureops.lineage import now_utc
from featureops.training import file_sha256

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "model.manifest.json"
POINTER_FILE = "production.json"
FRAME_MANIFEST_FILE = "frame.manifest.json"
LOCK_FILE = ".lock"


class ModelIntegrityError(RuntimeError):
    """The model artifact does not match its manifest."""


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, nothing to roll back to)."""


def save_model(
    model: Any,
    directory: Path,
    manifest: dict[str, Any],
    frame_manifest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the artifact and a manifest recording its sha256 (both atomically).

    The training frame's lineage manifest is kept beside the model as ``frame.manifest.json``
    (named by ``frame_manifest_copy``): ``frame_manifest`` if given (as returned by
    ``write_training_frame``), else the file ``manifest["frame_manifest"]`` names (or its
    staged new version while a stage runs). Either must describe the frame
    ``manifest["frame_sha256"]`` when that is given. The model manifest is written last, so
    it never names files that are not there.
    """
    directory = Path(directory)
    with atomic_path(directory / MODEL_FILE) as tmp:
        joblib.dump(model, tmp)
    manifest = {**manifest, "artifact": MODEL_FILE, "sha256": file_sha256(directory / MODEL_FILE)}
    copy = directory / FRAME_MANIFEST_FILE
    text = _frame_manifest_text(manifest, frame_manifest)
    if text is not None:
        with atomic_path(copy) as tmp:
            tmp.write_text(text)
        manifest["frame_manifest_copy"] = FRAME_MANIFEST_FILE
    else:
        manifest.pop("frame_manifest_copy", None)
        copy.unlink(missing_ok=True)  # a stale copy would describe another frame
    write_json(manifest, directory / MANIFEST_FILE)
    return manifest


def _frame_manifest_text(
    manifest: dict[str, Any], frame_manifest: dict[str, Any] | None
) -> str | None:
    """The text of the frame manifest to keep beside a model (None: none that matches)."""
    expected = manifest.get("frame_sha256")

    def matches(content: Any) -> bool:
        try:
            recorded = content["frame"]["sha256"]
        except (KeyError, TypeError):
            return False
        return expected is None or recorded == expected

    if frame_manifest is not None:
        # The same bytes featureops.io.write_json gives the frame's own manifest file.
        return (
            json.dumps(frame_manifest, indent=2, sort_keys=True, default=str) + "\n"
            if matches(frame_manifest)
            else None
        )
    named = manifest.get("frame_manifest")
    if not named:
        return None
    path = Path(named)
    places = [path]
    staging = getattr(featureops_io, "staging_container", None)
    if staging is not None:  # a stage writes its new outputs beside the old ones first
        places.append(staging(path.parent) / path.parent.name / path.name)
    for place in places:
        try:
            text = place.read_text()
            if matches(json.loads(text)):
                return text
        except (OSError, ValueError):
            continue
    return None


_held: dict[Path, int] = {}


@contextlib.contextmanager
def locked(registry: Path) -> Iterator[None]:
    """Hold the registry's lock (re-entrant within a process): one change at a time."""
    key = Path(registry).resolve()
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    key.mkdir(parents=True, exist_ok=True)
    with (key / LOCK_FILE).open("a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        _held[key] = 1
        try:
            yield
        finally:
            del _held[key]
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_FILE
    if not path.exists():
        raise RegistryError(f"no model manifest at {path}")
    return json.loads(path.read_text())


def load_model(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Load a model after checking its sha256 against the manifest."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    artifact = directory / manifest["artifact"]
    actual = file_sha256(artifact)
    if actual != manifest["sha256"]:
        raise ModelIntegrityError(
            f"refusing {artifact}: sha256 {actual[:16]}... does not match its manifest "
            f"({manifest['sha256'][:16]}...)"
        )
    return joblib.load(artifact), manifest


def versions(registry: Path) -> list[str]:
    """Registered versions, oldest first."""
    registry = Path(registry)
    if not registry.exists():
        return []
    found = [p.name for p in registry.iterdir() if p.is_dir() and p.name.startswith("v")]
    return sorted(found, key=lambda v: int(v[1:]) if v[1:].isdigit() else -1)


def register(candidate: Path, registry: Path) -> str:
    """Copy a verified candidate into the registry as the next version; return the version.

    The copy is assembled in a hidden folder and renamed into place: a version folder is
    complete or absent.
    """
    load_model(candidate)  # verifies integrity before anything is copied
    with locked(registry):
        existing = versions(registry)
        version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
        target = Path(registry) / version
        if target.exists():
            raise RegistryError(f"{target} already exists")
        tmp = Path(registry) / f".{version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(candidate, tmp)
        manifest = read_manifest(tmp) | {"version": version, "registered_at": now_utc()}
        write_json(manifest, tmp / MANIFEST_FILE)
        tmp.rename(target)
    return version


def _pointer(registry: Path) -> dict[str, Any]:
    path = Path(registry) / POINTER_FILE
    return json.loads(path.read_text()) if path.exists() else {"version": None, "history": []}


def production_version(registry: Path) -> str | None:
    """The version in production, or None."""
    return _pointer(registry)["version"]


def promote(registry: Path, version: str, reason: str = "manual") -> dict[str, Any]:
    """Point production at ``version`` (after verifying it); keep the history."""
    with locked(registry):
        if version not in versions(registry):
            raise RegistryError(
                f"unknown model version {version!r}; registered: {versions(registry)}"
            )
        load_model(Path(registry) / version)
        pointer = _pointer(registry)
        pointer["history"].append({"version": version, "at": now_utc(), "reason": reason})
        pointer["version"] = version
        write_json(pointer, Path(registry) / POINTER_FILE)
    return pointer


def update_manifest(directory: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into a model's manifest (atomically); the artifact is untouched."""
    manifest = read_manifest(directory) | changes
    write_json(manifest, Path(directory) / MANIFEST_FILE)
    return manifest


def rollback(registry: Path) -> dict[str, Any]:
    """Return production to the version promoted before the current one."""
    with locked(registry):
        pointer = _pointer(registry)
        previous = [
            h["version"] for h in pointer["history"][:-1] if h["version"] != pointer["version"]
        ]
        if not previous:
            raise RegistryError("nothing to roll back to: no earlier production version")
        return promote(registry, previous[-1], reason=f"rollback from {pointer['version']}")


def load_production(registry: Path) -> tuple[Any, dict[str, Any]]:
    """The production model and its manifest (integrity-checked)."""
    version = production_version(registry)
    if version is None:
        raise RegistryError(
            f"no production model in {registry}; run `featureops model register --promote`"
        )
    return load_model(Path(registry) / version)
