"""A fresh clone's `dvc repro` reproduces every committed output: `git status` stays clean.

The template (``built_demo``) ran `dvc repro` once and committed dvc.lock, metrics and
plots. A `git clone` of it elsewhere (no data, no DVC cache, another folder, another
process) runs the whole pipeline again: every tracked metric, plot and output hash must
come out byte for byte the same, the Feast registry included (its source paths are
relative to the project folder): `git status` is clean.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.project import BuiltDemo, dvc, run

pytestmark = pytest.mark.e2e

STAGES = ("simulate", "ingest", "validate", "transform", "materialize", "evaluate", "monitor")


def _lock_hashes(root: Path) -> dict[tuple[str, str, str], str | None]:
    """(stage, deps|outs, path) -> md5 of every entry in dvc.lock."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {
        (stage, kind, entry["path"]): entry.get("md5")
        for stage, body in stages.items()
        for kind in ("deps", "outs")
        for entry in body.get(kind, [])
    }


def test_a_fresh_clone_reproduces_every_committed_byte(
    built_demo: BuiltDemo, tmp_path: Path
) -> None:
    clone = tmp_path / "elsewhere" / "clone"
    clone.parent.mkdir()
    run(["git", "clone", "-q", str(built_demo.root), str(clone)], tmp_path)
    dvc(clone, "repro")

    status = run(["git", "status", "--porcelain"], clone).stdout.splitlines()
    assert status == []  # dvc.lock, metrics, plots, .gitignore: unchanged
    assert _lock_hashes(clone) == _lock_hashes(built_demo.root)
    assert len(_lock_hashes(clone)) > 20

    # what `dvc metrics show` reads: one small summary per stage, nothing else
    shown = json.loads(dvc(clone, "metrics", "show", "--json").stdout)
    files = shown[""]["data"]
    assert sorted(files) == sorted(f"metrics/summary/{stage}.json" for stage in STAGES)
    assert all(len(f["data"]) <= 7 for f in files.values()), files
