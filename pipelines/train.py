"""DVC stage `train`: training frame through the feature service -> model candidate + lineage.

The frame (with its lineage) and the candidate are replaced together, atomically
(``featureops.io.staged_outputs``): a failed or killed run leaves the previous version.
"""

from __future__ import annotations

import sys

from featureops.config import stage_params
from featureops.frames import FrameError, compile_plan, open_store
from featureops.io import staged_outputs, write_parquet
from featureops.labels import LabelSpec, label_rows
from featureops.lineage import now_utc
from featureops.monitoring import REFERENCE_FILE, reference_sample
from featureops.progress import working
from featureops.registry import save_model
from featureops.store.registry import RegistryLocationError, check_registry_location
from featureops.training import predict_proba, split_time, time_split, train_model
from featureops.training_frames import manifest_path, write_training_frame


def main(argv: list[str] | None = None) -> int:
    params, paths = stage_params(__doc__, argv)
    cfg = params["train"]
    label = LabelSpec.from_params(params)
    try:
        store = open_store(params["feast"]["repo"])
        check_registry_location(store)
    except (FrameError, RegistryLocationError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 1
    plan = compile_plan(store, cfg["feature_service"])
    entities = label_rows(
        label, paths, plan.join_keys, start=cfg["frame_start"], end=cfg["frame_end"]
    )
    with staged_outputs(dirs=[paths.frames, paths.candidate]) as out:
        manifest = _train(params, paths, store, plan, label, entities, out)
    print(
        f"train: {manifest['train_rows']} rows, {len(manifest['features'])} features, "
        f"model sha256 {manifest['sha256'][:16]}"
    )
    return 0


def _train(params, paths, store, plan, label, entities, out) -> dict:
    """Write the frame and the candidate into the staged output folders ``out``."""
    cfg = params["train"]
    frame_file = paths.frames / "train.parquet"  # where it will be: recorded in the manifest
    with working(f"train: point-in-time join of {len(entities):,} entity rows"):
        frame, frame_manifest = write_training_frame(
            store,
            cfg["feature_service"],
            entities,
            out.path(paths.frames) / frame_file.name,
            as_known_at=bool(cfg["as_known_at"]),
            params=params,
        )
    split = time_split(frame, split_time(frame, cfg), label.horizon)
    model = train_model(split.train, label.name, plan.output_features, cfg["model"])
    reference = reference_sample(
        split.train, predict_proba(model, split.train), int(params["monitor"]["reference_rows"])
    )
    candidate = out.path(paths.candidate)
    write_parquet(reference, candidate / REFERENCE_FILE)  # drift reference for monitoring
    return save_model(
        model,
        candidate,
        {
            "kind": "model",
            "created_at": now_utc(),
            "feature_service": cfg["feature_service"],
            "entity_keys": plan.join_keys,
            "label": label.name,
            "threshold": cfg["threshold"],
            "features": list(model.feature_names_in_),
            "train_rows": len(split.train),
            "train_window": [
                str(split.train.event_timestamp.min()),
                str(split.train.event_timestamp.max()),
            ],
            "hyperparameters": cfg["model"],
            "frame_manifest": str(manifest_path(frame_file)),
            "frame_sha256": frame_manifest["frame"]["sha256"],
            "definitions_fingerprint": frame_manifest["definitions_fingerprint"],
            "git": frame_manifest["git"],
        },
        frame_manifest=frame_manifest,
    )


if __name__ == "__main__":
    sys.exit(main())
