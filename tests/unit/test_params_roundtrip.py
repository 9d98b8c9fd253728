"""``dvc exp run -S key=value`` rewrites params.yaml through its YAML round trip (ruamel,
hydra overrides): the repository's layout must come back unchanged except for the set line.

DVC replaces every list it touches with a new one, so flow lists (``[a, b]``) come back as
block lists and comments or blank lines that follow a list are dropped; long lines are
wrapped at 80 columns, quotes are re-chosen and ``null`` is written empty. params.yaml is
therefore written in the form DVC writes.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

PARAMS = REPO_ROOT / "params.yaml"
BIN = Path(sys.executable).parent


def _changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def _scalars(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def _other(value: Any) -> str:
    """A hydra override value different from ``value``, of the same kind."""
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, int | float):
        return str(value + 1)
    if value is None:
        return "1"
    return f"'{value}x'"


def test_every_scalar_set_changes_only_its_line(tmp_path: Path) -> None:
    """DVC's own override code (what ``-S`` runs) sets every scalar of params.yaml to another
    value at once: each key's line changes, in place, and no other line does (comments,
    blank lines, lists, quoting). DVC rebuilds the whole document whatever is set, so one
    call covers setting any single key."""
    from dvc.utils.hydra import apply_overrides

    text = PARAMS.read_text()
    scalars = dict(_scalars(yaml.safe_load(text)))
    copy = tmp_path / "params.yaml"
    copy.write_text(text)
    apply_overrides(str(copy), [f"{key}={_other(value)}" for key, value in scalars.items()])
    after = copy.read_text()

    before_lines, after_lines = text.splitlines(), after.splitlines()
    assert len(after_lines) == len(before_lines), _changed_lines(text, after)[:20]
    leaves = {key.rsplit(".", 1)[-1] for key in scalars}
    moved = [
        (old, new)
        for old, new in zip(before_lines, after_lines, strict=True)
        if old != new
        and not (old.split(":")[0] == new.split(":")[0] and old.split(":")[0].strip() in leaves)
    ]
    assert not moved, f"params.yaml does not survive `dvc exp run -S`: {moved[:10]}"
    changed = sum(old != new for old, new in zip(before_lines, after_lines, strict=True))
    assert changed == len(scalars)  # every set value landed on its own line
    expected = yaml.safe_load(text)
    for key, value in scalars.items():
        *parents, leaf = key.split(".")
        node = expected
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(_other(value))
    assert yaml.safe_load(after) == expected


def _run(cmd: list[str], cwd: Path) -> str:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dvc_exp_run_set_param_diff_is_one_line(tmp_path: Path) -> None:
    """A real ``dvc exp run -S train.model.C=0.1`` in a throw-away git + DVC repository with
    this params.yaml: ``git diff params.yaml`` is exactly the ``C`` line."""
    text = PARAMS.read_text()
    (tmp_path / "params.yaml").write_text(text)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  fit:\n"
        "    cmd: python -c \"open('c.txt', 'w').write('${train.model.C}')\"\n"
        "    params:\n"
        "      - train.model\n"
        "    outs:\n"
        "      - c.txt:\n"
        "          cache: false\n"
    )
    _run(["git", "init", "-q"], tmp_path)
    _run([str(BIN / "dvc"), "init", "-q"], tmp_path)
    _run([str(BIN / "dvc"), "repro", "-q"], tmp_path)
    _run(["git", "add", "-A"], tmp_path)
    _run(["git", "commit", "-qm", "base"], tmp_path)

    _run([str(BIN / "dvc"), "exp", "run", "-q", "-S", "train.model.C=0.1"], tmp_path)

    assert (tmp_path / "c.txt").read_text() == "0.1"  # the experiment ran with the set value
    after = (tmp_path / "params.yaml").read_text()
    changed = _changed_lines(text, after)
    assert [line.split("#")[0].strip() for line in changed] == ["-    C: 1.0", "+    C: 0.1"], (
        changed
    )
    assert yaml.safe_load(after) == {
        **yaml.safe_load(text),
        "train": {
            **yaml.safe_load(text)["train"],
            "model": {**yaml.safe_load(text)["train"]["model"], "C": 0.1},
        },
    }
