"""A built demo project shared by the crash and copy tests: a copy of the template."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.project import (  # noqa: F401  (re-exported: other tests import them from here)
    BIN,
    BuiltDemo,
    assert_up_to_date,
    build_project,
    copy_project,
    dvc,
    env,
    project_files,
    run,
    tiny_params,
)

HOOK = Path(__file__).parent / "hook"  # sitecustomize that pauses a stage for the kill


@pytest.fixture(scope="session")
def built_project(built_demo: BuiltDemo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built demo the crash tests may kill stages in (they leave it complete)."""
    return copy_project(built_demo, tmp_path_factory.mktemp("crash") / "project")


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
