"""dvc.yaml lists every library module each stage runs, so a code change re-runs it.

The closure of a stage's imports is found statically (every ``featureops`` import anywhere
in a module, function-level imports included), so lazily imported code counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return {n for n in names if n.split(".")[0] == "featureops"}


def import_closure(start: list[Path]) -> set[Path]:
    """Every featureops source file reachable from ``start`` through imports."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            parts = name.split(".")
            for i in range(2, len(parts) + 1):  # packages on the way are imported too
                found = _module_file(".".join(parts[:i]))
                if found is not None:
                    todo.append(found)
    return {p for p in seen if SRC in p.parents}


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


def _entry_files(stage: str, spec: dict) -> list[Path]:
    cmd = spec["cmd"]
    if cmd.startswith("python -m pipelines."):
        return [REPO_ROOT / "pipelines" / f"{cmd.split()[2].split('.')[1]}.py"]
    if cmd.startswith("feast "):
        params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
        return sorted((REPO_ROOT / params["feast"]["repo"]).glob("*.py"))
    raise AssertionError(f"stage {stage}: unknown command {cmd!r}")


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO_ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_depends_on_all_the_code_it_runs(stage: str) -> None:
    spec = _stages()[stage]
    deps = [d for d in spec.get("deps", []) if "${" not in d or d.startswith("${feast.repo}")]
    deps = [d.replace("${feast.repo}", "feature_repo") for d in deps]
    entry = _entry_files(stage, spec)
    package_marker = SRC / "featureops" / "__init__.py"  # a docstring and a version only
    missing = sorted(
        p.relative_to(REPO_ROOT).as_posix()
        for p in [*entry, *import_closure(entry)]
        if p != package_marker and not _covered(p, deps)
    )
    assert not missing, f"dvc.yaml stage {stage!r} lacks deps: {missing}"


def test_feast_paths_agree_with_feature_store_yaml() -> None:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    repo = REPO_ROOT / params["feast"]["repo"]
    config = yaml.safe_load((repo / "feature_store.yaml").read_text())
    registry = (
        config["registry"]["path"] if isinstance(config["registry"], dict) else config["registry"]
    )
    assert (repo / registry).resolve() == (REPO_ROOT / params["feast"]["registry"]).resolve()
    online = (repo / config["online_store"]["path"]).resolve()
    assert online == (REPO_ROOT / params["feast"]["online_store"]).resolve()
