"""Shared fixtures: a project params file whose paths point into a temp directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

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
