"""Write training frames with a lineage manifest, and reproduce a frame from its manifest."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from featureops import catalog, lineage
from featureops.definitions import service_fingerprint
from featureops.frames import FrameError, build_frame, compile_plan
from featureops.io import read_parquet, write_json, write_parquet

if TYPE_CHECKING:
    from feast import FeatureStore

MANIFEST_SUFFIX = ".manifest.json"
ENTITIES_SUFFIX = ".entities.parquet"


def manifest_path(frame_path: str | Path) -> Path:
    """``frame.parquet`` -> ``frame.manifest.json`` beside it."""
    frame_path = Path(frame_path)
    return frame_path.with_name(frame_path.stem + MANIFEST_SUFFIX)


def entities_path(frame_path: str | Path) -> Path:
    """Where the entity frame used for a frame is kept (needed to reproduce it)."""
    frame_path = Path(frame_path)
    return frame_path.with_name(frame_path.stem + ENTITIES_SUFFIX)


def read_entity_frame(path: str | Path) -> pd.DataFrame:
    """Read an entity frame from Parquet or CSV (timestamps must carry a zone)."""
    path = Path(path)
    if not path.exists():
        raise FrameError(f"entity frame not found: {path}")
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return read_parquet(path)


def label_entity_frame(
    store: FeatureStore,
    label_view: str = "failure_labels",
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    machines: list[int] | None = None,
) -> pd.DataFrame:
    """Entity rows with labels from a label feature view's source, in ``[start, end)``."""
    view = store.get_feature_view(label_view)
    source = view.batch_source
    ts = source.timestamp_field
    keys = [c.name for c in view.entity_columns]
    labels = [f.name for f in view.features]
    where, bind = ["TRUE"], {"path": source.path}
    if start is not None:
        where.append(f'"{ts}" >= $start')
        bind["start"] = (
            pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tz is None else pd.Timestamp(start)
        )
    if end is not None:
        where.append(f'"{ts}" < $end')
        bind["end"] = (
            pd.Timestamp(end, tz="UTC") if pd.Timestamp(end).tz is None else pd.Timestamp(end)
        )
    if machines:
        where.append(f'"{keys[0]}" IN (SELECT unnest($machines))')
        bind["machines"] = [int(m) for m in machines]
    cols = (
        ", ".join(f'"{c}"' for c in keys)
        + f', "{ts}" AS {catalog.EVENT_TIMESTAMP}, '
        + ", ".join(f'"{c}"' for c in labels)
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        df = con.execute(
            f"SELECT {cols} FROM read_parquet($path) WHERE {' AND '.join(where)} "
            f"ORDER BY {catalog.EVENT_TIMESTAMP}, {', '.join(keys)}",
            bind,
        ).df()
    finally:
        con.close()
    if df.empty:
        raise FrameError(
            f"no label rows in {label_view} for start={start} end={end} machines={machines}"
        )
    df[catalog.EVENT_TIMESTAMP] = (
        df[catalog.EVENT_TIMESTAMP].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    )
    return df


def _project_root(store: FeatureStore) -> Path:
    return catalog.project_root_of(store.repo_path)


def write_training_frame(
    store: FeatureStore,
    service_name: str,
    entity_df: pd.DataFrame,
    out_path: str | Path,
    *,
    as_known_at: bool = False,
    params: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Build a frame, write it with its entity frame and lineage manifest; return both."""
    root = _project_root(store)
    plan = compile_plan(store, service_name)
    frame = build_frame(store, service_name, entity_df, as_known_at=as_known_at)
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
        "params": params or {},
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
