"""The staged-output commit protocol of ``featureops.io``, crashed at every step in process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import featureops.io as io
from featureops.io import (
    recover_outputs,
    replace_dir_atomically,
    staged_outputs,
    staging_container,
    write_json,
)

pytestmark = pytest.mark.crash


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs (no cleanup, no except Exception)."""


def _outputs(root: Path) -> tuple[Path, Path, Path]:
    tables, stats, metrics = root / "data" / "tables", root / "data" / "stats", root / "m.json"
    for folder, files in ((tables, ("a", "gone")), (stats, ("s",))):
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_text(f"old {name}")
    metrics.write_text("old")
    return tables, stats, metrics


def _write_new(staged: io.StagedOutputs, tables: Path, stats: Path, metrics: Path) -> None:
    (staged.path(tables) / "a").write_text("new a")
    (staged.path(tables) / "b").write_text("new b")
    (staged.path(stats) / "s").write_text("new s")
    write_json({"new": True}, staged.path(metrics))


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".featureops-" in p.name]


def _crash_at_install(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    calls = {"n": 0}
    original = io._install

    def install(staged: Path, target: Path) -> None:
        calls["n"] += 1
        if calls["n"] == nth:
            raise Crash
        original(staged, target)

    monkeypatch.setattr(io, "_install", install)


def test_new_version_replaces_the_old_as_a_whole(tmp_path: Path) -> None:
    tables, stats, metrics = _outputs(tmp_path)
    with staged_outputs(dirs=[tables, stats], files=[metrics]) as staged:
        assert staged.path(tables).parent == staging_container(tables)
        assert not staged.path(tables).is_relative_to(tables)  # beside, never inside
        _write_new(staged, tables, stats, metrics)
        assert (tables / "a").read_text() == "old a"  # nothing visible before the commit
    assert sorted(p.name for p in tables.iterdir()) == ["a", "b"]  # "gone" is gone
    assert (tables / "a").read_text() == "new a" and '"new": true' in metrics.read_text()
    assert not _leftovers(tmp_path)


def test_an_exception_changes_nothing(tmp_path: Path) -> None:
    tables, stats, metrics = _outputs(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(RuntimeError), staged_outputs(dirs=[tables, stats], files=[metrics]) as s:
        _write_new(s, tables, stats, metrics)
        raise RuntimeError("bad param")
    assert _tree(tmp_path) == before and not _leftovers(tmp_path)


def test_a_crash_before_the_commit_point_is_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables, stats, metrics = _outputs(tmp_path)
    before = _tree(tmp_path)
    monkeypatch.setattr(io.StagedOutputs, "_cleanup", lambda self: None)  # killed: no cleanup
    with pytest.raises(Crash), staged_outputs(dirs=[tables, stats], files=[metrics]) as staged:
        _write_new(staged, tables, stats, metrics)
        raise Crash
    monkeypatch.undo()
    assert _leftovers(tmp_path)  # a kill leaves the half-built staging folders
    assert {k: v for k, v in _tree(tmp_path).items() if ".featureops-" not in k} == before
    assert recover_outputs([tables, stats, metrics]) == []
    assert _tree(tmp_path) == before and not _leftovers(tmp_path)


@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_crash_after_the_commit_point_is_rolled_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int
) -> None:
    tables, stats, metrics = _outputs(tmp_path)
    _crash_at_install(monkeypatch, nth)
    with pytest.raises(Crash), staged_outputs(dirs=[tables, stats], files=[metrics]) as staged:
        _write_new(staged, tables, stats, metrics)
    monkeypatch.undo()
    assert recover_outputs([tables, stats, metrics]) == [tables, stats, metrics][nth - 1 :]
    assert (tables / "b").read_text() == "new b" and (stats / "s").read_text() == "new s"
    assert not (tables / "gone").exists() and '"new": true' in metrics.read_text()
    assert not _leftovers(tmp_path)


def test_a_crash_between_the_two_renames_of_the_fallback_is_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without RENAME_EXCHANGE the old folder is renamed away first: a kill right then leaves
    no folder at the output path, and recovery puts the new one there."""
    tables, stats, metrics = _outputs(tmp_path)
    monkeypatch.setattr(io, "exchange_paths", lambda a, b: False)
    real_rename = os.rename
    calls = {"n": 0}

    def rename(src, dst) -> None:
        calls["n"] += 1
        real_rename(src, dst)
        if calls["n"] == 1:  # the old folder was just renamed away
            raise Crash

    monkeypatch.setattr(io.os, "rename", rename)
    with pytest.raises(Crash), staged_outputs(dirs=[tables, stats], files=[metrics]) as staged:
        _write_new(staged, tables, stats, metrics)
    monkeypatch.undo()
    assert not tables.exists()
    assert recover_outputs([tables, stats, metrics]) == [tables, stats, metrics]
    assert (tables / "b").read_text() == "new b" and not _leftovers(tmp_path)


def test_keep_leaves_an_identical_output_untouched(tmp_path: Path) -> None:
    *_, metrics = _outputs(tmp_path)
    inode = metrics.stat().st_ino
    with staged_outputs(files=[metrics]) as staged:
        staged.path(metrics).write_text("old")
        staged.keep(metrics)
    assert metrics.stat().st_ino == inode and not _leftovers(tmp_path)


def test_a_folder_output_never_disappears_for_a_reader(tmp_path: Path) -> None:
    target = tmp_path / "features"
    target.mkdir()
    (target / "x").write_text("0")
    missing: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if not (target / "x").exists():
                missing.append(1)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(200):
            replace_dir_atomically(target, lambda d, i=i: (d / "x").write_text(str(i)))
    finally:
        stop.set()
        thread.join()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    if io.exchange_paths(a, b):  # exchange supported here: no gap at all
        assert not missing
    assert (target / "x").read_text() == "199" and not _leftovers(tmp_path)
