"""``kill -9`` inside every stage, mid-run: the previous outputs stay, complete and readable.

One built demo project is shared. For each stage, ``dvc repro -f -s <stage>`` runs with the
stage paused at a point where its new version is (partly) built (see ``hook/``); the test
SIGKILLs the stage process there and checks that every output of the stage is byte-identical
to before and readable. The last test re-runs every stage (each recovering what its kill
left) and checks ``dvc status`` is clean and nothing of the write protocol is left behind.
Stages failing on a bad param are checked first, on the clean project.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from featureops.io import recover_outputs, staging_container
from tests.crash.conftest import (
    BIN,
    assert_up_to_date,
    dvc,
    leftovers,
    lock_outs,
    run,
    run_and_kill,
    snapshot,
)

pytestmark = pytest.mark.crash

COMMIT = "featureops.io:StagedOutputs._commit"  # every new output staged, none installed
CRASH_POINTS = {
    # simulate.py writes its landing zone with its own temp-folder swap: pause mid-build
    "simulate": "featureops.simulate:write_sensor_days",
    "ingest": COMMIT,
    "validate": COMMIT,
    "transform": COMMIT,
    "feast_apply": COMMIT,
    # the online store is updated in place: pause inside the second view's transaction
    "materialize": "featureops.store.online.sqlite:_insert:2",
    "train": COMMIT,
    "evaluate": COMMIT,
    "monitor": COMMIT,
}


def readable(path: Path) -> None:
    """Open every file of an output the way its readers do."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    assert files, f"{path} is empty"
    for f in files:
        if f.suffix == ".parquet":
            pq.read_table(f)
        elif f.suffix == ".json":
            json.loads(f.read_text())
        elif f.name == "online_store.db":
            con = sqlite3.connect(f"file:{f}?mode=ro", uri=True)
            try:
                tables = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                for (name,) in tables.fetchall():
                    con.execute(f'SELECT count(*) FROM "{name}"').fetchall()
            finally:
                con.close()
        else:
            f.read_bytes()


def online_contents(db: Path) -> dict[str, list[tuple]]:
    """Every feature row of the online store (not the bookkeeping), sorted."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' "
                "AND name LIKE 'featureops_%' AND name != 'featureops_materializations'"
            )
        ]
        return {n: sorted(con.execute(f'SELECT * FROM "{n}"').fetchall()) for n in names}
    finally:
        con.close()


def _prepare(stage: str, root: Path) -> None:
    """Make the killed run have real work whose result would differ from the outputs."""
    if stage == "feast_apply":  # a changed definition: the new registry differs
        views = root / "feature_repo" / "feature_views.py"
        views.write_text(
            views.read_text().replace(
                'description="Static machine attributes from the registry."',
                'description="Static machine attributes (crash test)."',
            )
        )
    if stage == "materialize":  # no bookkeeping: every view is rewritten from scratch
        con = sqlite3.connect(root / "data" / "feast" / "online_store.db")
        with con:
            con.execute("DELETE FROM featureops_materializations")
        con.close()


def _restore(stage: str, root: Path) -> None:
    if stage == "feast_apply":
        run(["git", "checkout", "--", "feature_repo/feature_views.py"], root)


@pytest.mark.parametrize(
    ("stage", "section", "key", "bad"),
    [("transform", "transform", "chunk_rows", 0), ("train", "model", "C", -1.0)],
)
def test_a_stage_failing_on_a_bad_param_keeps_its_outputs(
    built_project: Path, stage: str, section: str, key: str, bad: object
) -> None:
    root = built_project
    outs = lock_outs(root, stage)
    before = {out: snapshot(out) for out in outs}
    params_path = root / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    (params["train"]["model"] if section == "model" else params[section])[key] = bad
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = dvc(root, "repro", "-s", stage, check=False)
    finally:
        params_path.write_text(original)
    assert proc.returncode != 0, proc.stdout
    for out in outs:
        assert snapshot(out) == before[out], f"{stage}: {out} changed by a failed run"
        readable(out)
    assert not leftovers(root), leftovers(root)  # a failure cleans up after itself
    assert_up_to_date(root)


@pytest.mark.parametrize("stage", list(CRASH_POINTS))
def test_kill_9_inside_a_stage_keeps_its_previous_outputs(built_project: Path, stage: str) -> None:
    root = built_project
    outs = lock_outs(root, stage)
    db = root / "data" / "feast" / "online_store.db"
    _prepare(stage, root)
    before = {out: snapshot(out) for out in outs}
    online_before = online_contents(db) if stage == "materialize" else None
    try:
        run_and_kill(root, ["repro", "-f", "-s", stage], CRASH_POINTS[stage])
    finally:
        _restore(stage, root)

    for out in outs:
        assert out.exists(), f"{stage}: {out} is gone after kill -9"
        if out == db:  # updated in place: its feature rows are what a reader sees
            readable(out)
            assert online_contents(db) == online_before, "online store changed by a killed run"
            continue
        assert snapshot(out) == before[out], f"{stage}: {out} changed after kill -9"
        readable(out)
    if CRASH_POINTS[stage] == COMMIT:  # the new version was built beside, never installed
        assert any(staging_container(out).exists() for out in outs), leftovers(root)
    if stage == "transform":  # the issue: `featureops frame` failed with a raw IOException
        frame = root.parent / "frame.parquet"  # outside the project: not a DVC output
        run(
            [
                str(BIN / "featureops"),
                "frame",
                "--out",
                str(frame),
                "--start",
                "2026-01-02T00:00:00Z",
                "--end",
                "2026-01-03T00:00:00Z",
            ],
            root,
        )
        assert len(pd.read_parquet(frame)) > 0


def test_a_kill_during_the_install_is_rolled_forward(built_project: Path) -> None:
    """Killed after one output was swapped in, before the others: the next run (or any
    reader calling ``recover_outputs``) completes the install from the commit journal."""
    root = built_project
    # every output of the stage, in its install order (pipelines/ingest.py stages them in
    # dvc.yaml's order: interim, quarantine, then the metrics files)
    outs = lock_outs(root, "ingest")
    assert len(outs) >= 3, outs
    run_and_kill(root, ["repro", "-f", "-s", "ingest"], "featureops.io:_install:2")
    assert leftovers(root)  # the commit journal and the staged outputs not yet installed
    assert recover_outputs(outs) == outs[1:]  # the first was installed before the kill
    for out in outs:
        readable(out)
    assert_up_to_date(root, "ingest")  # deterministic: the new version equals dvc.lock's


def test_a_rerun_after_the_kills_completes_and_dvc_status_is_clean(built_project: Path) -> None:
    """Every stage re-runs after its own kill (recovering what the kill left) and DVC agrees."""
    root = built_project
    dvc(root, "repro", "-f")
    assert_up_to_date(root)
    assert not leftovers(root), leftovers(root)
