"""A project folder copied with ``cp -a`` reads its own files and never touches the original's.

The issue: ``feast apply`` inside a copy dropped every feature table of the *original's*
online store (the copied registry recorded the tables by absolute path); back in the
original, materialize trusted its bookkeeping, wrote nothing and left the store empty.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.crash.conftest import BIN, assert_up_to_date, dvc, run

pytestmark = pytest.mark.crash


def _state(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of the original's Feast files."""
    feast = root / "data" / "feast"
    return {
        name: (
            hashlib.sha256((feast / name).read_bytes()).hexdigest(),
            (feast / name).stat().st_mtime_ns,
        )
        for name in ("registry.db", "online_store.db")
    }


def _rows(db: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'featureops_%'"
            )
        ]
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in names}
    finally:
        con.close()


@pytest.fixture
def copied(built_project: Path) -> Path:
    copy = built_project.parent / "copy"
    subprocess.run(["cp", "-a", str(built_project), str(copy)], check=True)
    yield copy
    subprocess.run(["rm", "-rf", str(copy)], check=True)


def test_a_copy_runs_on_its_own_files_and_leaves_the_original_alone(
    built_project: Path, copied: Path
) -> None:
    original = built_project
    before, rows_before = _state(original), _rows(original / "data" / "feast" / "online_store.db")
    assert rows_before["featureops_sensor_stats"] > 0
    # The registry records no folder: source paths are relative to the project folder.
    registry = (copied / "data" / "feast" / "registry.db").read_bytes()
    assert str(original).encode() not in registry
    assert b"data/features/sensor_stats.parquet" in registry

    # 1. Plain Feast in the copy, as the issue did: the copied registry records no table
    #    locations, so nothing of the original's store is dropped.
    run([str(BIN / "feast"), "-c", "feature_repo", "apply"], copied)
    assert _state(original) == before

    # 2. The pipeline's own apply (back to the canonical bytes) and a materialize that must
    #    write: the copy's feature table changes, the original's store must not.
    python = str(BIN / "python")
    run([python, "-m", "pipelines.feast_apply"], copied)
    assert (copied / "data" / "feast" / "registry.db").read_bytes() == registry
    table = copied / "data" / "features" / "sensor_stats.parquet"
    rows = pq.read_table(table)
    one_machine = pc.equal(rows["machine_id"], rows["machine_id"][0])
    pq.write_table(rows.filter(pc.invert(one_machine)), table)
    run([python, "-m", "pipelines.materialize"], copied)
    assert _state(original) == before
    assert _rows(original / "data" / "feast" / "online_store.db") == rows_before
    copied_rows = _rows(copied / "data" / "feast" / "online_store.db")
    assert copied_rows["featureops_sensor_stats"] < rows_before["featureops_sensor_stats"]
    assert_up_to_date(original)


def test_materialize_restores_tables_its_bookkeeping_says_are_there(built_project: Path) -> None:
    """What the copy did to the original: tables dropped behind materialize's back."""
    root = built_project
    db = root / "data" / "feast" / "online_store.db"
    rows_before = _rows(db)
    con = sqlite3.connect(db)
    with con:
        con.execute('DROP TABLE "featureops_sensor_stats"')
        con.execute('DELETE FROM "featureops_machine_profile" WHERE rowid % 2 = 0')
    con.close()
    assert "materialize" in dvc(root, "status").stdout  # the store file changed
    proc = dvc(root, "repro")
    assert "Running stage 'materialize'" in proc.stdout
    assert _rows(db) == rows_before
    assert_up_to_date(root)
