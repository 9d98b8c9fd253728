"""The demo project as the e2e and crash tests use it: built once, copied cheaply.

``build_project`` writes a git + DVC copy of this repository with tiny params and runs
``dvc repro`` in it (about a minute on 2 cores: nine stage processes, each paying its
imports). The session fixture ``built_demo`` (tests/conftest.py) does that once, with the
params audit on, and keeps the result as a *template* nobody changes. Tests that change a
project work in ``copy_project(built_demo, dest)``: a ``cp -a`` of the template.

A copy needs no relocating: nothing the pipeline writes records the folder it ran in (the
Feast registry names Parquet paths relative to the project folder), so in the copy
``git status`` and ``dvc status`` are clean as they are, which ``copy_project`` checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AUDIT_SITE = REPO_ROOT / "tests" / "params_audit"  # sitecustomize that logs params reads


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every command: the venv first on PATH, quiet bars, a git identity."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TQDM_DISABLE": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        **(extra or {}),
    }


def run(
    cmd: list[str], cwd: Path, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd``; with ``check``, fail showing its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env(extra_env), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], root, check)


def git_commit(root: Path, message: str) -> str:
    """``git add -A`` + commit; return the new HEAD."""
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", message], root)
    return head(root)


def head(root: Path) -> str:
    return run(["git", "rev-parse", "HEAD"], root).stdout.strip()


def assert_up_to_date(root: Path, *stages: str) -> None:
    """``dvc status`` (of ``stages`` and what they depend on, or of everything) is clean."""
    out = dvc(root, "status", *stages).stdout
    assert "up to date" in out.lower(), out


def project_files() -> list[str]:
    """The repository's files as git sees them (tracked + new), without bench/ and tests/."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in out if (REPO_ROOT / f).is_file() and not f.startswith(("bench/", "tests/"))]


def tiny_params(params: dict) -> dict:
    """The demo shrunk to 8 machines x 8 days (1,536 readings) with failures in it.

    Smaller does not pay: a stage's time here is its process start-up and imports (Feast,
    GE, scikit-learn), not its rows, and fewer machines or days leave the evaluation
    window without both classes.
    """
    params["simulate"].update(n_machines=8, n_days=8)
    params["simulate"]["failure"]["wear_rate_range"] = [0.006, 0.015]  # failures within days
    params["features"]["sensor_stats"]["normalize"]["fit"] = {
        "start": "2026-01-01",
        "end": "2026-01-06",
    }
    params["train"].update(split_at="2026-01-07")
    return params


def write_project(root: Path) -> str:
    """Copy this repository's files to ``root`` with tiny params; git init + commit.

    Returns the commit.
    """
    for rel in project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    params_path = root / "params.yaml"
    params_path.write_text(
        yaml.safe_dump(tiny_params(yaml.safe_load(params_path.read_text())), sort_keys=False)
    )
    run(["git", "init", "-q"], root)
    return git_commit(root, "init")


def build_project(root: Path, audit: Path | None = None) -> Path:
    """A git + DVC copy of this repository with tiny params, reproduced once and committed.

    With ``audit``, every stage records the params keys it reads into that folder.
    """
    write_project(root)
    extra = None
    if audit is not None:
        extra = {
            "FEATUREOPS_PARAMS_AUDIT": str(audit),
            "PYTHONPATH": os.pathsep.join([str(AUDIT_SITE), os.environ.get("PYTHONPATH", "")]),
        }
    run([str(BIN / "dvc"), "repro"], root, extra_env=extra)
    git_commit(root, "first repro")
    return root


@dataclass(frozen=True)
class BuiltDemo:
    """The built template (never changed by a test) and what its build recorded."""

    root: Path
    audit: Path  # params keys each stage read during the first `dvc repro`
    init_commit: str  # the commit the first `dvc repro` ran at (its outputs not in it yet)
    repro_commit: str  # the commit recording the first repro's dvc.lock


def build_demo(base: Path) -> BuiltDemo:
    """``build_project`` under ``base/project`` with the params audit in ``base/params_audit``."""
    root = base / "project"
    build_project(root, audit=base / "params_audit")
    init = run(["git", "rev-parse", "HEAD~1"], root).stdout.strip()
    return BuiltDemo(root, base / "params_audit", init, head(root))


def copy_project(demo: BuiltDemo | Path, dest: Path) -> Path:
    """A ``cp -a`` copy of a built project at ``dest`` (see the module docstring).

    ``git status`` and ``dvc status`` are clean in the copy, as they were in the template.
    """
    source = demo.root if isinstance(demo, BuiltDemo) else demo
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    status = run(["git", "status", "--porcelain"], dest).stdout
    assert status == "", f"a copy of a built project is not clean:\n{status}"
    assert_up_to_date(dest)
    return dest
