"""Atomic writes and the one timestamp convention (UTC, microseconds) for every Parquet file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


def current_umask() -> int:
    """The process's file-creation mask, read without changing it.

    ``os.umask`` can only be read by setting it, which races with other threads creating
    files; Linux reports it in ``/proc/self/status``. Elsewhere, set-and-restore.
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions of a newly created file: ``0o666`` minus the umask (``0o644``
    typically). ``mkstemp`` alone gives ``0o600``, which other users and groups cannot read.
    The mode of a file being replaced is not carried over (DVC may have made it read-only)."""
    return 0o666 & ~current_umask()


def new_dir_mode() -> int:
    """The permissions of a newly created directory: ``0o777`` minus the umask (``mkdtemp``
    alone gives ``0o700``)."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it over ``target`` only on success.

    A crash or exception leaves the previous ``target`` untouched and removes the temp file.
    The file gets the mode of a newly created file (:func:`new_file_mode`), not ``0o600``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, new_file_mode())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def to_utc_us(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Return ``df`` with datetime columns as ``datetime64[us, UTC]`` (naive ones read as UTC)."""
    out = df.copy()
    cols = (
        columns
        if columns is not None
        else [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c])]
    )
    for col in cols:
        series = pd.to_datetime(out[col], utc=True)
        out[col] = series.astype("datetime64[us, UTC]")
    return out


def arrow_timestamps_to_utc_us(table: pa.Table) -> pa.Table:
    """Cast every timestamp column of an Arrow table to ``timestamp[us, UTC]``."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, TIMESTAMP_TYPE, f.nullable))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields), safe=False)


def write_parquet(data: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write Parquet atomically with UTC microsecond timestamps (see PITFALLS: Feast+DuckDB)."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    table = arrow_timestamps_to_utc_us(table)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
    return Path(path)


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet`."""
    return pd.read_parquet(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically, sorted keys, trailing newline."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


# --------------------------------------------------------------------------- staged outputs
#
# A stage writes every output of a new version into staging paths beside the outputs, then
# installs them all at once. DVC keeps the previous version in place (``persist: true``), so
# until the install a reader sees the previous version, complete; a killed or failing stage
# changes nothing visible. The install is a commit protocol:
#
# 1. each output ``<parent>/<name>`` is built as ``<parent>/.<name>.featureops-staging/<name>``
#    (beside the output, never inside it: DVC sees no stray files in a tracked folder);
# 2. a journal ``<parent>/.<name>.featureops-commit.json`` (of the first output) records each
#    output, its staged path and the staged path's inode: the commit point;
# 3. each output is swapped with its staged version in one atomic step (Linux
#    ``renameat2(RENAME_EXCHANGE)`` for folders, ``rename`` over files), so the output path
#    never disappears, then the journal and the staging folders (now the old versions) go.
#
# A crash before the journal leaves only staging folders, which the next run deletes; a crash
# after it is rolled forward by the next run (or any :func:`recover_outputs` call): an output
# whose inode is not yet the recorded one is swapped in. Where exchange is not supported, the
# old version is renamed away first and the same roll-forward completes the second rename.

STAGING_SUFFIX = ".featureops-staging"
JOURNAL_SUFFIX = ".featureops-commit.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def staging_container(target: str | Path) -> Path:
    """The folder beside ``target`` that holds its staged new version while a stage runs."""
    target = Path(target)
    return target.parent / f".{target.name}{STAGING_SUFFIX}"


def _journal_path(first: Path) -> Path:
    return first.parent / f".{first.name}{JOURNAL_SUFFIX}"


_renameat2: Any = None


def _load_renameat2() -> Any:
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange_paths(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2``); False where unsupported."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = _load_renameat2()
    if _renameat2 is False:
        return False
    import ctypes

    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False  # the call or the filesystem does not support exchange
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _inode(path: Path) -> int | None:
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _install(staged: Path, target: Path) -> None:
    """Put ``staged`` at ``target`` in one step; the old version ends up in the container."""
    if not os.path.lexists(target):
        os.rename(staged, target)
    elif staged.is_dir() or target.is_dir():
        if not exchange_paths(staged, target):
            old = staged.with_name(f"{staged.name}.old")
            _remove(old)
            os.rename(target, old)  # a crash here is rolled forward by recover_outputs
            os.rename(staged, target)
    else:
        os.replace(staged, target)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover_outputs(targets: Sequence[str | Path]) -> list[Path]:
    """Finish or undo an interrupted install of ``targets``; return the outputs rolled forward.

    Safe to call any time no stage is writing these outputs (stages call it first).
    """
    outputs = [Path(t) for t in targets]
    if not outputs:
        return []
    journal = _journal_path(outputs[0])
    rolled: list[Path] = []
    if journal.exists():
        try:
            entries = json.loads(journal.read_text())["outputs"]
        except (ValueError, KeyError, OSError):
            entries = []  # a torn journal was never the commit point (it is renamed in whole)
        for entry in entries:  # paths are relative to the journal's folder
            target = Path(os.path.normpath(journal.parent / entry["target"]))
            staged = Path(os.path.normpath(journal.parent / entry["staged"]))
            inode = entry["inode"]
            if _inode(target) == inode:
                continue  # already installed
            if _inode(staged) == inode:
                _install(staged, target)
                rolled.append(target)
        journal.unlink()
    _remove(journal.with_name(journal.name + ".tmp"))
    for output in outputs:
        _remove(staging_container(output))
    return rolled


class StagedOutputs:
    """The staging paths of one stage's outputs; see :func:`staged_outputs`."""

    def __init__(self, dirs: list[Path], files: list[Path]) -> None:
        self.dirs, self.files = dirs, files
        self.targets = [*dirs, *files]
        self._unchanged: set[Path] = set()

    def path(self, target: str | Path) -> Path:
        """Where the new version of ``target`` is written (a folder is created empty)."""
        target = Path(target)
        if target not in self.targets:
            raise KeyError(f"{target} is not an output of this stage")
        return staging_container(target) / target.name

    def container(self, target: str | Path) -> Path:
        """The folder holding ``path(target)``: pass it where code appends the output's name."""
        return self.path(target).parent

    def keep(self, target: str | Path) -> None:
        """Leave ``target`` as it is (the new version is identical): it is not replaced."""
        self._unchanged.add(Path(target))

    def _begin(self) -> None:
        recover_outputs(self.targets)
        for target in self.targets:
            container = staging_container(target)
            container.mkdir(parents=True)
            if target in self.dirs:
                (container / target.name).mkdir()

    def _commit(self) -> None:
        journal = _journal_path(self.targets[0])
        entries = []
        for target in self.targets:
            if target in self._unchanged:
                continue
            staged = self.path(target)
            if not os.path.lexists(staged):
                self._cleanup()
                raise FileNotFoundError(f"stage did not write its output {target}")
            entries.append(
                {
                    "target": os.path.relpath(target, journal.parent),
                    "staged": os.path.relpath(staged, journal.parent),
                    "inode": _inode(staged),
                }
            )
        if entries:
            tmp = journal.with_name(journal.name + ".tmp")
            with tmp.open("w") as fh:
                json.dump({"outputs": entries}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, journal)  # the commit point
            for target in self.targets:
                if target not in self._unchanged:
                    _install(self.path(target), target)
            for parent in {t.parent for t in self.targets}:
                _fsync_dir(parent)
            journal.unlink()
        self._cleanup()

    def _cleanup(self) -> None:
        for target in self.targets:
            _remove(staging_container(target))


@contextlib.contextmanager
def staged_outputs(
    dirs: Sequence[str | Path] = (), files: Sequence[str | Path] = ()
) -> Iterator[StagedOutputs]:
    """Write a stage's outputs (folders ``dirs``, single files ``files``) as one new version.

    Inside the block, write each output's new version to ``staged.path(output)``; on normal
    exit every output is replaced at once (what a folder's new version lacks is gone), on an
    exception nothing is. Interrupted earlier runs are recovered first::

        with staged_outputs(dirs=[paths.features], files=[metrics_file]) as staged:
            write_parquet(table, staged.path(paths.features) / "x.parquet")
            write_json(summary, staged.path(metrics_file))
    """
    staged = StagedOutputs([Path(d) for d in dirs], [Path(f) for f in files])
    staged._begin()
    try:
        yield staged
    except BaseException:
        staged._cleanup()
        raise
    staged._commit()


def replace_dir_atomically(target: str | Path, build: Callable[[Path], Any]) -> Any:
    """Build a folder's new version with ``build(tmp_dir)`` and swap it in for ``target``.

    ``target`` never disappears (an atomic exchange); a crash at any point leaves the old or
    the new complete folder, and the next call (or :func:`recover_outputs`) cleans up.
    """
    target = Path(target)
    with staged_outputs(dirs=[target]) as staged:
        return build(staged.path(target))
