"""The pipeline's own training frame reproduces after later commits and new data.

repro -> commit -> push, new data -> repro -> commit -> push; the first run's frame manifest
(kept by the model registry beside model v1, and a bare copy of the JSON) rebuilds the
identical frame: from the DVC cache, and after the cache is deleted, from the DVC remote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from featureops import registry
from tests.conftest import REPO_ROOT
from tests.e2e.test_pipeline import BIN, project_files, run, tiny_params

pytestmark = pytest.mark.e2e

FRAME_MANIFEST = "data/frames/train.manifest.json"


def dvc(root: Path, *args: str) -> str:
    return run([str(BIN / "dvc"), *args], root).stdout


def featureops(root: Path, *args: str, check: bool = True):
    return run([str(BIN / "featureops"), *args], root, check=check)


def commit(root: Path, message: str) -> str:
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message], root)
    return run(["git", "rev-parse", "HEAD"], root).stdout.strip()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("reproduce")
    root = base / "project"
    for rel in project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    params_path = root / "params.yaml"
    params = tiny_params(yaml.safe_load(params_path.read_text()))
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], root)
    dvc(root, "remote", "add", "-f", "-d", "local", str(base / "remote"))
    base_commit = commit(root, "init")

    # The train stage's frame is built before the commit that records it exists.
    dvc(root, "repro", "train")
    first_commit = commit(root, "first data")
    dvc(root, "push")
    first = json.loads((root / FRAME_MANIFEST).read_text())
    kept = base / "kept" / "train.manifest.json"  # the bare JSON, without the entity frame
    kept.parent.mkdir()
    shutil.copy2(root / FRAME_MANIFEST, kept)
    # `featureops model register`, in process (the CLI adds only start-up time here)
    assert registry.register(root / "models" / "candidate", root / "models" / "registry") == "v1"

    params["simulate"]["seed"] += 1  # new data: every stage re-runs
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(root, "repro", "train")
    commit(root, "new data")
    dvc(root, "push")
    second = json.loads((root / FRAME_MANIFEST).read_text())
    return {
        "root": root,
        "kept": kept,
        "first": first,
        "second": second,
        "base_commit": base_commit,
        "first_commit": first_commit,
    }


def test_the_stage_manifest_records_head_and_that_its_commit_did_not_exist_yet(
    history: dict,
) -> None:
    git = history["first"]["git"]
    assert git["commit"] == history["base_commit"] != history["first_commit"]
    assert git["dvc_stage"] == "train" and git["outputs_commit"] is None
    assert "does not need this commit" in git["note"]
    assert history["first"]["as_known_at"] is True  # knowledge time is the default
    assert history["first"]["entity_frame"]["md5"] and history["first"]["frame"]["md5"]
    changed = [
        rel
        for rel, info in history["first"]["data"].items()
        if history["second"]["data"][rel]["md5"] != info["md5"]
    ]
    assert "data/features/sensor_stats.parquet" in changed  # the new data really differs


@pytest.fixture(scope="module")
def store(history: dict):
    """The project's Feast store, in this process (one Feast start-up for the in-process calls)."""
    from featureops.frames import open_store

    return open_store(history["root"] / "feature_repo")


def test_the_registered_models_frame_reproduces_from_the_cache_after_new_data(
    history: dict, store
) -> None:
    from featureops.training_frames import reproduce

    root = history["root"]
    result = reproduce(store, root / "models/registry/v1/model.manifest.json")
    assert result.match is True
    assert result.actual_sha256 == history["first"]["frame"]["sha256"]
    assert result.data_sources["data/features/sensor_stats.parquet"] == "dvc at cache"
    assert result.data_sources["entity_frame"] == "dvc at cache"


def test_the_first_frame_reproduces_from_the_remote_after_the_cache_is_deleted(
    history: dict,
) -> None:
    root = history["root"]
    shutil.rmtree(root / ".dvc" / "cache")
    dvc(root, "pull")  # a fresh clone's state: the newest data only
    assert json.loads((root / FRAME_MANIFEST).read_text()) == history["second"]
    proc = featureops(root, "reproduce", str(history["kept"]))
    result = json.loads(proc.stdout)
    assert result["match"] is True
    assert result["actual_sha256"] == history["first"]["frame"]["sha256"]
    sources = result["data_sources"]
    assert sources["data/features/sensor_stats.parquet"] == "dvc at remote 'local'"
    assert sources["entity_frame"] == "dvc at remote 'local'"


def test_a_version_that_is_nowhere_gives_a_clear_error(
    history: dict, store, tmp_path: Path
) -> None:
    from featureops.frames import FrameError  # what `featureops reproduce` reports (exit 2)
    from featureops.training_frames import reproduce

    manifest = dict(history["first"])
    manifest["data"] = {
        rel: info | {"md5": "0" * 32} for rel, info in history["first"]["data"].items()
    }
    path = tmp_path / "broken.manifest.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(FrameError, match=r"data/features/\w+\.parquet \(md5 0{32}\)"):
        reproduce(store, path)
