"""Write training frames with a lineage manifest, and reproduce a frame from its manifest.

Frames are "as known at" their entity times by default (``train.as_known_at``): a feature
row counts only once it was known (``created <= entity time``), which is what serving sees.
Every input is recorded by md5, so reproducing a frame reads the exact bytes it was built
from (workspace, DVC cache or default DVC remote) without checking out any commit.
"""

from __future__ import annotations

import os
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
    as_known_at: bool = True,
    params: dict[str, Any] | None = None,
    plan: RetrievalPlan | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build a frame, write it with its entity frame and lineage manifest; return both.

    The manifest is written last and atomically: a manifest on disk always describes a
    complete frame and entity frame.
    """
    root = _project_root(store)
    plan = plan or compile_plan(store, service_name)
    frame = build_frame(store, service_name, entity_df, as_known_at=as_known_at, plan=plan)
    out_path = Path(out_path)
    entities = frame[list(entity_df.columns)]
    entity_file = write_parquet(entities, entities_path(out_path))
    write_parquet(frame, out_path)
    data = lineage.data_versions(plan.source_files, root)
    manifest = {
        "kind": "training_frame",
        "created_at": lineage.now_utc(),
        "git": lineage.output_commit(root, data),
        "feature_service": service_name,
        "definitions_fingerprint": service_fingerprint(store, service_name),
        "plan": plan.describe(),
        "as_known_at": as_known_at,
        "data": data,
        "params": lineage_params(params or {}),
        "entity_frame": {
            "path": entity_file.name,
            "md5": lineage.file_md5(entity_file),
            "sha256": lineage.frame_sha256(entities),
            "rows": len(entities),
        },
        "frame": {
            "path": out_path.name,
            "md5": lineage.file_md5(out_path),
            "sha256": lineage.frame_sha256(frame),
            "rows": len(frame),
            "columns": list(frame.columns),
        },
        "reproduce": (
            "inputs (data.*.md5) and the entity frame (entity_frame.md5) are read by md5 from "
            "the workspace, the DVC cache or the default DVC remote; no git checkout is needed, "
            "only the same feature definitions (definitions_fingerprint)"
        ),
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


def frame_manifest_of(manifest_file: str | Path) -> Path:
    """A frame manifest itself, or the copy a model manifest keeps beside its model."""
    manifest_file = Path(manifest_file)
    manifest = lineage.read_manifest(manifest_file)
    if manifest.get("kind") != "model":
        return manifest_file
    copy = manifest.get("frame_manifest_copy")
    if not copy or not (manifest_file.parent / copy).exists():
        raise FrameError(
            f"{manifest_file} is a model manifest without a copy of its frame manifest; "
            f"reproduce the frame manifest it names: {manifest.get('frame_manifest')}"
        )
    return manifest_file.parent / copy


def _local_version(
    root: Path, md5: str | None, candidates: list[Path], what: str, tmp: Path
) -> tuple[Path, str]:
    """A readable file with ``md5``, named like ``what`` (DuckDB wants the .parquet name)."""
    if md5 is None:  # manifests before md5s were recorded: only the given files can do
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise FrameError(f"{what} not found (its manifest records no md5 to fetch it by)")
        return found, "workspace"
    try:
        path, origin = lineage.locate_data(root, md5, candidates, what)
    except lineage.DataNotFoundError as exc:
        raise FrameError(str(exc)) from None
    if origin == "workspace":
        return path, origin
    link = tmp / md5 / Path(what).name
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(path, link)
    except OSError:  # no symlinks here (e.g. Windows without the privilege): copy
        shutil.copyfile(path, link)
    return link, origin


def reproduce(store: FeatureStore, manifest_file: str | Path) -> Reproduction:
    """Rebuild the frame a manifest describes from exactly the data versions it records.

    Each input and the entity frame is read by its recorded md5: the workspace file if it
    still has it, else DVC's cache, else the default DVC remote. No git revision is read,
    so the pipeline's own manifests (built before their commit existed) reproduce after any
    later commits and data. The feature definitions must still have the recorded
    fingerprint. A model manifest is followed to the copy of its frame manifest.
    """
    manifest_file = frame_manifest_of(manifest_file)
    manifest = lineage.read_manifest(manifest_file)
    service = manifest["feature_service"]
    current = service_fingerprint(store, service)
    if current != manifest["definitions_fingerprint"]:
        git = manifest.get("git") or {}
        raise FrameError(
            f"definitions of {service!r} changed since the frame was built (fingerprint "
            f"{manifest['definitions_fingerprint'][:12]} -> {current[:12]}); check out a commit "
            f"with the recorded definitions (built on top of {git.get('commit')}), run "
            "`feast apply`, and reproduce again"
        )
    root = _project_root(store)
    plan = compile_plan(store, service)
    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="featureops-reproduce-") as tmp:
        recorded = manifest["entity_frame"]
        candidates = [manifest_file.parent / recorded["path"]]
        entity_file, origin = _local_version(
            root, recorded.get("md5"), candidates, recorded["path"], Path(tmp)
        )
        entities = read_parquet(entity_file)
        if lineage.frame_sha256(entities) != recorded["sha256"]:
            raise FrameError(f"entity frame {entity_file} does not match its recorded sha256")
        sources["entity_frame"] = origin
        substitutes: dict[str, str] = {}
        for rel, info in manifest["data"].items():
            path = root / rel
            found, origin = _local_version(root, info["md5"], [path], rel, Path(tmp))
            sources[rel] = origin
            if origin != "workspace":
                substitutes[str(path.resolve())] = str(found)
        plan.views = [
            replace(v, source=substitutes.get(str(Path(str(v.source)).resolve()), v.source))
            for v in plan.views
        ]
        frame = build_frame(
            store, service, entities, as_known_at=manifest["as_known_at"], plan=plan
        )
    actual = lineage.frame_sha256(frame)
    expected = manifest["frame"]["sha256"]
    return Reproduction(actual == expected, expected, actual, len(frame), sources)
