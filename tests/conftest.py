"""Shared fixtures: repository params for tests to shrink; the built demo project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

import tests._prometheus_first  # noqa: F401  (first: see that module)
from tests.project import REPO_ROOT, BuiltDemo, build_demo

os.environ.setdefault("TQDM_DISABLE", "1")


def load_repo_params() -> dict:
    """The repository's params.yaml as a dict (tests copy and shrink it)."""
    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def write_params(root: Path, params: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture
def repo_params() -> dict:
    return load_repo_params()


@pytest.fixture(scope="session")
def built_demo(tmp_path_factory: pytest.TempPathFactory) -> BuiltDemo:
    """The demo project, git + DVC, tiny params, reproduced once per session (with the
    params audit). A template: read it, or work in ``tests.project.copy_project`` of it."""
    return build_demo(tmp_path_factory.mktemp("demo"))
