"""A built demo project (git + DVC, tiny params) shared by the crash and copy tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.e2e.test_pipeline import project_files, tiny_params

BIN = Path(sys.executable).parent
HOOK = Path(__file__).parent / "hook"  # sitecustomize that pauses a stage for the kill


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
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


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], root, check)


def assert_up_to_date(root: Path, *stages: str) -> None:
    """``dvc status`` (of ``stages`` and what they depend on, or of everything) is clean."""
    out = dvc(root, "status", *stages).stdout
    assert "up to date" in out.lower(), out


def build_project(root: Path) -> Path:
    """A git + DVC copy of this repository with tiny params, reproduced once."""
    for rel in project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    params_path = root / "params.yaml"
    params_path.write_text(
        yaml.safe_dump(tiny_params(yaml.safe_load(params_path.read_text())), sort_keys=False)
    )
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    dvc(root, "repro")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "first repro"], root)
    return root


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("crash") / "project")


def snapshot(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), by relative name."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def lock_outs(root: Path, stage: str) -> list[Path]:
    """The outputs (outs, metrics, plots) ``dvc.lock`` records for a stage."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return [root / out["path"] for out in lock["stages"][stage].get("outs", [])]


def run_and_kill(
    root: Path, args: list[str], crash_at: str, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``dvc <args>`` with the stage paused at ``crash_at``; SIGKILL the stage there."""
    marker = root.parent / f"crash-{time.monotonic_ns()}.pid"
    proc = subprocess.Popen(
        [str(BIN / "dvc"), *args],
        cwd=root,
        env=env(
            {
                "FEATUREOPS_CRASH_AT": crash_at,
                "FEATUREOPS_CRASH_MARKER": str(marker),
                "PYTHONPATH": os.pathsep.join([str(HOOK), os.environ.get("PYTHONPATH", "")]),
            }
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"dvc {args} ended before {crash_at}:\n{proc.stdout.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"dvc {args} did not reach {crash_at} in {timeout} s")
            time.sleep(0.05)
        os.kill(int(marker.read_text()), signal.SIGKILL)  # kill -9 inside the stage
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        marker.unlink(missing_ok=True)
    assert proc.returncode != 0, out  # DVC saw the stage die
    return subprocess.CompletedProcess(args, proc.returncode, out, "")


def leftovers(root: Path) -> list[str]:
    """Staging folders or commit journals of the output protocol left in the project."""
    found = [*root.rglob("*.featureops-staging"), *root.rglob("*.featureops-commit.json")]
    return sorted(p.relative_to(root).as_posix() for p in found if ".dvc" not in p.parts)
