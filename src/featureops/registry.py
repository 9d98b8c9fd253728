"""A file-based model registry that fits DVC.

``models/candidate/`` is the train stage's DVC output. Registering copies it to
``models/registry/<version>/`` (v1, v2, ...); ``models/registry/production.json`` points at
the version in production and keeps the history for rollbacks. Every load checks the
artifact's sha256 against its manifest: a tampered or half-copied model is refused.
Track the registry with ``dvc add models/registry`` to version it with the data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import joblib

from featureops.io import atomic_path, write_json
from featureops.lineage import now_utc
from featureops.training import file_sha256

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "model.manifest.json"
POINTER_FILE = "production.json"


class ModelIntegrityError(RuntimeError):
    """The model artifact does not match its manifest."""


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, nothing to roll back to)."""


def save_model(model: Any, directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the artifact and a manifest recording its sha256 (both atomically)."""
    directory = Path(directory)
    with atomic_path(directory / MODEL_FILE) as tmp:
        joblib.dump(model, tmp)
    manifest = {**manifest, "artifact": MODEL_FILE, "sha256": file_sha256(directory / MODEL_FILE)}
    write_json(manifest, directory / MANIFEST_FILE)
    return manifest


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
    """Copy a verified candidate into the registry as the next version; return the version."""
    load_model(candidate)  # verifies integrity before anything is copied
    existing = versions(registry)
    version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
    target = Path(registry) / version
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
    if version not in versions(registry):
        raise RegistryError(f"unknown model version {version!r}; registered: {versions(registry)}")
    load_model(Path(registry) / version)
    pointer = _pointer(registry)
    pointer["history"].append({"version": version, "at": now_utc(), "reason": reason})
    pointer["version"] = version
    write_json(pointer, Path(registry) / POINTER_FILE)
    return pointer


def rollback(registry: Path) -> dict[str, Any]:
    """Return production to the version promoted before the current one."""
    pointer = _pointer(registry)
    previous = [h["version"] for h in pointer["history"][:-1] if h["version"] != pointer["version"]]
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
