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

from tests.e2e.conftest import FRAME_MANIFEST
from tests.project import BIN, run

pytestmark = pytest.mark.e2e


def dvc(root: Path, *args: str) -> str:
    return run([str(BIN / "dvc"), *args], root).stdout


def featureops(root: Path, *args: str, check: bool = True):
    return run([str(BIN / "featureops"), *args], root, check=check)


@pytest.fixture(scope="module")
def history(two_versions: dict) -> dict:
    """The demo's first data version (committed, pushed, model v1 registered from it), then
    new data (``simulate.seed`` + 1) reproduced, committed and pushed: tests/e2e/conftest.py."""
    return two_versions


def test_the_stage_manifest_records_that_its_commit_did_not_exist_yet(history: dict) -> None:
    git = history["first"]["git"]
    # Inside a DVC stage no HEAD is recorded (featureops.lineage.output_commit): a HEAD in a
    # tracked output would make every fresh run's hash differ from the committed dvc.lock.
    assert git["commit"] is None and git["dirty"] is None
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
    cache, aside = root / ".dvc" / "cache", root / ".dvc" / "cache.aside"
    cache.rename(aside)  # deleted for this test; put back after it (the project is shared)
    try:
        dvc(root, "pull")  # a fresh clone's state: the newest data only
        assert json.loads((root / FRAME_MANIFEST).read_text()) == history["second"]
        proc = featureops(root, "reproduce", str(history["kept"]))
        result = json.loads(proc.stdout)
        assert result["match"] is True
        assert result["actual_sha256"] == history["first"]["frame"]["sha256"]
        sources = result["data_sources"]
        assert sources["data/features/sensor_stats.parquet"] == "dvc at remote 'local'"
        assert sources["entity_frame"] == "dvc at remote 'local'"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        aside.rename(cache)


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
