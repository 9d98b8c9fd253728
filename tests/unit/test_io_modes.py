"""Files written by the atomic writers get the umask-derived mode, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from featureops import io


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_with_atomic_path(path: Path) -> None:
    with io.atomic_path(path) as tmp:
        tmp.write_bytes(b"x")


WRITERS: dict[str, Callable[[Path], object]] = {
    "atomic_path": write_with_atomic_path,
    "write_parquet": lambda p: io.write_parquet(pd.DataFrame({"a": [1, 2]}), p),
    "write_json": lambda p: io.write_json({"a": 1}, p),
    "write_text": lambda p: io.write_text("a\n", p),
}


def test_the_umask_is_read_without_changing_it(umask: int) -> None:
    assert io.current_umask() == umask
    assert io.current_umask() == umask  # unchanged by reading
    assert io.new_file_mode() == 0o666 & ~umask


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_new_file_gets_the_mode_open_would_give_it(
    writer: str, umask: int, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # what a non-atomic write would create
    target = tmp_path / "out" / "file"
    WRITERS[writer](target)
    assert mode(target) == mode(plain) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["file"]  # no temp file left


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_replacing_a_0600_file_gives_the_normal_mode(writer: str, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        target = tmp_path / "file"
        target.write_bytes(b"old")
        target.chmod(0o600)  # e.g. written by an earlier version of featureops
        WRITERS[writer](target)
        assert mode(target) == 0o644
    finally:
        os.umask(previous)


def test_staged_outputs_install_files_and_folders_with_normal_modes(
    umask: int, tmp_path: Path
) -> None:
    folder, single = tmp_path / "features", tmp_path / "metrics.json"
    with io.staged_outputs(dirs=[folder], files=[single]) as staged:
        io.write_parquet(pd.DataFrame({"a": [1]}), staged.path(folder) / "t.parquet")
        io.write_json({"rows": 1}, staged.path(single))
    assert mode(folder / "t.parquet") == mode(single) == 0o666 & ~umask
    assert mode(folder) == 0o777 & ~umask


def test_replace_dir_atomically_gives_normal_modes(umask: int, tmp_path: Path) -> None:
    target = tmp_path / "landing"

    def build(tmp: Path) -> None:
        io.write_text("a,b\n", tmp / "x.csv")

    io.replace_dir_atomically(target, build)
    assert mode(target / "x.csv") == 0o666 & ~umask


def test_the_umask_is_read_where_proc_is_missing(
    umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_proc(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("/proc/self/status")

    monkeypatch.setattr(io, "open", no_proc, raising=False)  # shadows the builtin in io
    assert io.current_umask() == umask
    assert os.umask(umask) == umask  # restored after reading
