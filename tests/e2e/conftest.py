"""A copy of the built demo with two data versions, shared by the e2e pipeline tests.

repro (the template) -> relocate -> ``dvc push`` -> register v1 and build an ad-hoc frame
-> new data (``simulate.seed`` + 1) -> ``dvc repro train`` -> commit -> ``dvc push``. The
frame, checkout and reproduction tests all need exactly this history; building it once
replaces four full ``dvc repro`` runs and their restores.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from featureops import registry
from tests.project import BIN, BuiltDemo, copy_project, dvc, git_commit, head, run

FRAME_MANIFEST = "data/frames/train.manifest.json"
ADHOC_FRAME = "data/adhoc/frame.parquet"  # data/frames is the train stage output
SENSOR_STATS = "data/features/sensor_stats.parquet"


@pytest.fixture(scope="session")
def two_versions(built_demo: BuiltDemo, tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("versions")
    root = copy_project(built_demo, base / "project")
    # a local remote in .dvc/config.local: the committed config stays the template's
    dvc(root, "remote", "add", "--local", "-f", "-d", "local", str(base / "remote"))
    first_commit = head(root)
    dvc(root, "push")
    first = json.loads((root / FRAME_MANIFEST).read_text())
    kept = base / "kept" / "train.manifest.json"  # the bare JSON, without the entity frame
    kept.parent.mkdir()
    shutil.copy2(root / FRAME_MANIFEST, kept)
    # `featureops model register`, in process (the CLI adds only start-up time here)
    assert registry.register(root / "models" / "candidate", root / "models" / "registry") == "v1"
    adhoc = run(
        [
            str(BIN / "featureops"),
            "frame",
            "--out",
            ADHOC_FRAME,
            "--start",
            "2026-01-02T00:00:00Z",
            "--end",
            "2026-01-05T00:00:00Z",
        ],
        root,
    )
    first_features = (root / SENSOR_STATS).read_bytes()

    params_path = root / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["simulate"]["seed"] += 1  # new data: every stage up to train re-runs
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(root, "repro", "train")
    second_commit = git_commit(root, "new data")
    dvc(root, "push")
    return {
        "root": root,
        "kept": kept,
        "first": first,
        "second": json.loads((root / FRAME_MANIFEST).read_text()),
        "base_commit": built_demo.init_commit,  # where the template's first repro ran
        "first_commit": first_commit,
        "second_commit": second_commit,
        "adhoc_stdout": adhoc.stdout,
        "first_features": first_features,
    }
