"""Write training frames with a lineage manifest, and reproduce a frame from its manifest."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from featureops import lineage
from featureops.definitions import service_fingerprint
from featureops.frames import FrameError, RetrievalPlan, build_frame, compile_plan
from featureops.io import read_parquet, write_json, write_parquet

if TYPE_CHECKING:
    from feast import FeatureStore

MANIFEST_SUFFIX = ".manifest.json"
# The params sections a frame's manifest records: what the frame and its label were built from.
LINEAGE_SECTIONS = ("features", "label", "train")


def lineage_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parts of params.yaml a frame manifest records (see LINEAGE_SECTIONS)."""
    return {k: params[k] for k in LINEAGE_SECTIONS if k in params}


ENTITIES_SUFFIX = ".entities.parquet"


def manifest_path(frame_path: str | Path) -> Path:
    """``frame.parquet`` -> ``frame.manifest.json`` beside it."""
    frame_path = Path(frame_path)
    return frame_path.with_name(frame_path.stem + MANIFEST_SUFFIX)


def entities_path(frame_path: str | Path) -> Path:
    """Where the entity frame used for a frame is kept (needed to reproduce it)."""
    frame_path = Path(frame_path)
    return frame_path.with_name(frame_path.stem + ENTITIES_SUFFIX)


def read_entity_frame(path: str | Path, key_types: dict[str, str] | None = None) -> pd.DataFrame:
    """Read an entity frame from Parquet or CSV (timestamps must carry a zone).

    CSV key columns whose Feast type is String are read as text, so ids like ``007`` keep
    their zeros.
    """
    path = Path(path)
    if not path.exists():
        raise FrameError(f"entity frame not found: {path}")
    try:
        if path.suffix.lower() == ".csv":
            text_keys = {k: str for k, t in (key_types or {}).items() if t == "String"}
            return pd.read_csv(path, dtype=text_keys)
        return read_parquet(path)
    except (ValueError, OSError) as exc:
        raise FrameError(f"{path}: cannot read the entity frame: {exc}") from None


def _project_root(store: FeatureStore) -> Path:
    """The project folder that holds the feature repo (and params.yaml, dvc.lock)."""
    return Path(store.repo_path).resolve().parent


def write_training_frame(
    store: FeatureStore,
    service_name: str,
    entity_df: pd.DataFrame,
    out_path: str | Path,
    *,
    as_known_at: bool = False,
    params: dict[str, Any] | None = None,
    plan: RetrievalPlan | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build a frame, write it with its entity frame and lineage manifest; return both."""
    root = _project_root(store)
    plan = plan or compile_plan(store, service_name)
    frame = build_frame(store, service_name, entity_df, as_known_at=as_known_at, plan=plan)
    out_path = Path(out_path)
    entities = frame[list(entity_df.columns)]
    write_parquet(entities, entities_path(out_path))
    write_parquet(frame, out_path)
    manifest = {
        "kind": "training_frame",
        "created_at": lineage.now_utc(),
        "git": lineage.git_state(root),
        "feature_service": service_name,
        "definitions_fingerprint": service_fingerprint(store, service_name),
        "plan": plan.describe(),
        "as_known_at": as_known_at,
        "data": lineage.data_versions(plan.source_files, root),
        "params": lineage_params(params or {}),
        "entity_frame": {
            "path": entities_path(out_path).name,
            "sha256": lineage.frame_sha256(entities),
            "rows": len(entities),
        },
        "frame": {
            "path": out_path.name,
            "sha256": lineage.frame_sha256(frame),
            "rows": len(frame),
            "columns": list(frame.columns),
        },
        "libraries": lineage.library_versions(),
    }
    write_json(manifest, manifest_path(out_path))
    return frame, manifest


@dataclass
class Reproduction:
    """The outcome of rebuilding a frame from its manifest."""

    match: bool
    expected_sha256: str
    actual_sha256: str
    rows: int
    data_sources: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _fetch_at_revision(root: Path, rel: str, rev: str, dest: Path) -> None:
    import dvc.api

    with dvc.api.open(rel, repo=str(root), rev=rev, mode="rb") as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)


def reproduce(store: FeatureStore, manifest_file: str | Path) -> Reproduction:
    """Rebuild the frame a manifest describes, reading the recorded data versions.

    Data files whose current md5 differs from the manifest are read at the manifest's git
    commit through ``dvc.api`` (local cache or remote). The feature definitions must still
    have the recorded fingerprint.
    """
    manifest_file = Path(manifest_file)
    manifest = lineage.read_manifest(manifest_file)
    service = manifest["feature_service"]
    current = service_fingerprint(store, service)
    if current != manifest["definitions_fingerprint"]:
        raise FrameError(
            f"definitions of {service!r} changed since the frame was built (fingerprint "
            f"{manifest['definitions_fingerprint'][:12]} -> {current[:12]}); check out the "
            f"commit {manifest['git']['commit']} to reproduce it"
        )
    root = _project_root(store)
    entity_file = manifest_file.parent / manifest["entity_frame"]["path"]
    entities = read_parquet(entity_file)
    if lineage.frame_sha256(entities) != manifest["entity_frame"]["sha256"]:
        raise FrameError(f"entity frame {entity_file} does not match its recorded sha256")
    plan = compile_plan(store, service)
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="featureops-reproduce-") as tmp:
        substitutes: dict[str, str] = {}
        for rel, info in manifest["data"].items():
            path = root / rel
            if path.exists() and lineage.file_md5(path) == info["md5"]:
                sources[rel] = "current"
                continue
            rev = manifest["git"]["commit"]
            if not rev:
                raise FrameError(f"{rel} changed and the manifest records no git commit")
            dest = Path(tmp) / Path(rel).name
            _fetch_at_revision(root, rel, rev, dest)
            if lineage.file_md5(dest) != info["md5"]:
                raise FrameError(f"{rel} at {rev} does not have the recorded md5")
            substitutes[str(path.resolve())] = str(dest)
            sources[rel] = f"dvc at {rev[:12]}"
        plan.views = [
            replace(v, source=substitutes.get(str(Path(v.source).resolve()), v.source))
            for v in plan.views
        ]
        frame = build_frame(
            store, service, entities, as_known_at=manifest["as_known_at"], plan=plan
        )
    actual = lineage.frame_sha256(frame)
    expected = manifest["frame"]["sha256"]
    return Reproduction(actual == expected, expected, actual, len(frame), sources)
