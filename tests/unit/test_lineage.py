"""Lineage: frame checksums (independent of row/column order and dtype spelling, sensitive to
values), the commit a frame belongs to, and data versions found by md5 (workspace, DVC cache,
DVC remote)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from featureops import lineage
from featureops.lineage import frame_sha256


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 500
    return pd.DataFrame(
        {
            "machine_id": rng.integers(1, 20, n),
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10_000, n), unit="min"),
            "temperature_z": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "model": rng.choice(["A100", "B200", None], n),
            "failure_next_24h": rng.random(n) < 0.05,
        }
    )


def test_row_and_column_order_do_not_change_the_checksum(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=1)[list(reversed(frame.columns))]
    assert frame_sha256(shuffled) == frame_sha256(frame)


def test_dtype_spelling_does_not_change_the_checksum(frame: pd.DataFrame) -> None:
    other = frame.astype({"machine_id": "Int64", "temperature_z": "Float64"})
    other["event_timestamp"] = other["event_timestamp"].dt.tz_convert("Europe/Berlin")
    other["event_timestamp"] = other["event_timestamp"].astype("datetime64[ns, Europe/Berlin]")
    assert frame_sha256(other) == frame_sha256(frame)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(temperature_z=f["temperature_z"].where(f.index != 3, 1e-300)),
        lambda f: f.assign(temperature_z=np.nextafter(f["temperature_z"], np.inf)),
        lambda f: f.assign(
            event_timestamp=f["event_timestamp"].where(
                f.index != 7, f["event_timestamp"] + pd.Timedelta(microseconds=1)
            )
        ),
        lambda f: f.assign(model=f["model"].where(f.index != 2, "A1000")),
        lambda f: f.assign(model=f["model"].mask(f.index == f["model"].first_valid_index())),
        lambda f: f.assign(machine_id=f["machine_id"].where(f.index != 0, 999)),
        lambda f: f.rename(columns={"model": "machine_model"}),
        lambda f: pd.concat([f, f.iloc[[0]]]),  # a duplicated row is a different frame
        lambda f: f.iloc[1:],
    ],
)
def test_any_change_of_value_name_or_row_count_changes_the_checksum(
    frame: pd.DataFrame, change
) -> None:
    assert frame_sha256(change(frame.copy())) != frame_sha256(frame)


def test_text_values_cannot_shift_into_each_other() -> None:
    a = pd.DataFrame({"s": ["ab", "c"]})
    b = pd.DataFrame({"s": ["a", "bc"]})
    assert frame_sha256(a) != frame_sha256(b)


# --------------------------------------------------------------------------- commits and data


def _git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(lineage.DVC_STAGE_ENV, raising=False)
    _git(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    return tmp_path


def test_a_clean_tree_outside_a_stage_owns_its_outputs(repo: Path) -> None:
    info = lineage.output_commit(repo)
    assert info["dirty"] is False and info["dvc_stage"] is None
    assert info["outputs_commit"] == info["commit"] and len(info["commit"]) == 40


def test_inside_a_dvc_stage_the_outputs_commit_is_unknown_and_the_note_says_why(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lineage.DVC_STAGE_ENV, "train")
    info = lineage.output_commit(repo)
    assert info["dvc_stage"] == "train" and info["outputs_commit"] is None
    # HEAD is not recorded inside a stage: it would make the manifest differ per commit.
    assert info["commit"] is None and info["dirty"] is None
    assert "git log -- dvc.lock" in info["note"] and "does not need this commit" in info["note"]


def test_a_dirty_tree_or_unlisted_data_do_not_claim_a_commit(repo: Path) -> None:
    listed = {"data/x.parquet": {"md5": "0" * 32, "in_dvc_lock": True}}
    unlisted = {"data/x.parquet": {"md5": "0" * 32, "in_dvc_lock": False}}
    assert lineage.output_commit(repo, listed)["outputs_commit"] is not None
    assert lineage.output_commit(repo, unlisted)["outputs_commit"] is None
    unknown = {"data/x.parquet": {"md5": "0" * 32, "in_dvc_lock": None}}
    info = lineage.output_commit(repo, unknown)
    assert info["outputs_commit"] is None and "cannot be checked" in info["note"]
    (repo / "params.yaml").write_text("a: 2\n")
    info = lineage.output_commit(repo, listed)
    assert info["dirty"] is True and info["outputs_commit"] is None


def test_outside_git_there_is_no_commit(tmp_path: Path) -> None:
    info = lineage.output_commit(tmp_path)
    assert info["commit"] is None and info["outputs_commit"] is None


def _cache_object(cache: Path, md5: str, data: bytes) -> None:
    path = cache / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_data_versions_tell_whether_dvc_lock_lists_the_file(tmp_path: Path) -> None:
    features = tmp_path / "data" / "features"
    features.mkdir(parents=True)
    (features / "a.parquet").write_bytes(b"version 1")
    md5 = hashlib.md5(b"version 1").hexdigest()
    listing = json.dumps([{"md5": md5, "relpath": "a.parquet"}]).encode()
    dir_md5 = hashlib.md5(listing).hexdigest() + ".dir"
    _cache_object(tmp_path / ".dvc" / "cache", dir_md5, listing)
    lock = {"stages": {"transform": {"outs": [{"path": "data/features", "md5": dir_md5}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))

    versions = lineage.data_versions([features / "a.parquet"], tmp_path)
    entry = versions["data/features/a.parquet"]
    assert entry["md5"] == md5 and entry["in_dvc_lock"] is True
    assert entry["dvc"]["stage"] == "transform"

    (features / "a.parquet").write_bytes(b"edited by hand")
    assert (
        lineage.data_versions([features / "a.parquet"], tmp_path)["data/features/a.parquet"][
            "in_dvc_lock"
        ]
        is False
    )
    shutil.rmtree(tmp_path / ".dvc" / "cache")  # the listing is gone: cannot tell
    assert (
        lineage.data_versions([features / "a.parquet"], tmp_path)["data/features/a.parquet"][
            "in_dvc_lock"
        ]
        is None
    )


@pytest.fixture
def dvc_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A DVC repository (no git) with a local default remote."""
    from dvc.repo import Repo

    root, remote = tmp_path / "project", tmp_path / "remote"
    root.mkdir()
    Repo.init(str(root), no_scm=True).close()
    (root / ".dvc" / "config").write_text(
        f"[core]\n    no_scm = True\n    remote = store\n['remote \"store\"']\n    url = {remote}\n"
    )
    return root, remote


def test_locate_prefers_the_workspace_then_the_cache(dvc_repo: tuple[Path, Path]) -> None:
    root, _ = dvc_repo
    data = b"the bytes of an old version"
    md5 = hashlib.md5(data).hexdigest()
    current = root / "x.parquet"
    current.write_bytes(data)
    assert lineage.locate_data(root, md5, [current]) == (current, "workspace")
    current.write_bytes(b"a newer version")
    _cache_object(root / ".dvc" / "cache", md5, data)
    path, origin = lineage.locate_data(root, md5, [current])
    assert origin == "dvc at cache" and path.read_bytes() == data


def test_locate_fetches_a_missing_version_from_the_remote(dvc_repo: tuple[Path, Path]) -> None:
    root, remote = dvc_repo
    data = b"only on the remote"
    md5 = hashlib.md5(data).hexdigest()
    _cache_object(remote, md5, data)
    path, origin = lineage.locate_data(root, md5, [root / "gone.parquet"])
    assert origin == "dvc at remote 'store'" and path.read_bytes() == data
    assert (root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).exists()


def test_locate_names_the_file_and_the_remote_when_the_version_is_nowhere(
    dvc_repo: tuple[Path, Path],
) -> None:
    root, _ = dvc_repo
    with pytest.raises(lineage.DataNotFoundError, match=r"data/x\.parquet.*remote 'store'"):
        lineage.locate_data(root, "0" * 32, [], "data/x.parquet")
    (root / ".dvc" / "config").write_text("[core]\n    no_scm = True\n")
    with pytest.raises(lineage.DataNotFoundError, match="no default DVC remote"):
        lineage.locate_data(root, "0" * 32, [], "data/x.parquet")


def test_locate_outside_a_dvc_repository_says_so(tmp_path: Path) -> None:
    with pytest.raises(lineage.DataNotFoundError, match="not a DVC repository"):
        lineage.locate_data(tmp_path, "0" * 32, [], "data/x.parquet")
