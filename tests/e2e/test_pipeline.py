"""The whole pipeline under real DVC in a throw-away git repository, on a tiny demo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


AUDIT_SITE = REPO_ROOT / "tests" / "params_audit"  # sitecustomize that logs params reads


def run(
    cmd: list[str], cwd: Path, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **(extra_env or {}),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "TQDM_DISABLE": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def project_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [f for f in out if (REPO_ROOT / f).is_file() and not f.startswith(("bench/", "tests/"))]


def tiny_params(params: dict) -> dict:
    params["simulate"].update(n_machines=8, n_days=8)
    params["simulate"]["failure"]["wear_rate_range"] = [0.006, 0.015]  # failures within days
    params["features"]["sensor_stats"]["normalize"]["fit"] = {
        "start": "2026-01-01",
        "end": "2026-01-06",
    }
    params["train"].update(split_at="2026-01-07")
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC copy of this repository with tiny params, reproduced once."""
    root = tmp_path_factory.mktemp("project")
    for rel in project_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    params_path = root / "params.yaml"
    params_path.write_text(
        yaml.safe_dump(tiny_params(yaml.safe_load(params_path.read_text())), sort_keys=False)
    )
    run(["git", "init", "-q"], root)
    run([str(BIN / "dvc"), "remote", "add", "-f", "-d", "local", str(root.parent / "remote")], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    audit = {
        "FEATUREOPS_PARAMS_AUDIT": str(root.parent / "params_audit"),
        "PYTHONPATH": os.pathsep.join([str(AUDIT_SITE), os.environ.get("PYTHONPATH", "")]),
    }
    run([str(BIN / "dvc"), "repro"], root, extra_env=audit)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "first repro"], root)
    return root


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(BIN / "dvc"), *args], project, check)


def test_repro_builds_every_stage_and_counts_reconcile(project: Path) -> None:
    metrics = project / "metrics"
    ingest = json.loads((metrics / "ingest.json").read_text())
    validate = json.loads((metrics / "validate.json").read_text())
    for source, stats in ingest.items():
        assert stats["rows_in"] == stats["accepted"] + stats["quarantined"], source
    sims = json.loads((metrics / "simulate.json").read_text())
    assert ingest["sensors"]["quarantined"] > 0  # the simulator injects defects
    assert sims  # written
    for source in ("sensors", "machines", "maintenance", "failures"):
        assert validate[source]["rows_in"] == ingest[source]["accepted"]
    features = project / "data" / "features"
    for table in ("sensor_stats", "machine_history", "machine_profile", "failure_labels"):
        assert (features / f"{table}.parquet").exists(), table
    assert (project / "data" / "artifacts" / "normalization" / "sensor_stats.json").exists()
    assert (project / "reports" / "data_docs" / "index.html").exists()
    assert (project / "data" / "feast" / "online_store.db").exists()
    sensor = pd.read_parquet(features / "sensor_stats.parquet")
    assert str(sensor["event_timestamp"].dtype) == "datetime64[us, UTC]"


def test_model_is_trained_and_evaluated(project: Path) -> None:
    evaluation = json.loads((project / "metrics" / "evaluate.json").read_text())
    assert evaluation["model"]["rows"] > 0 and 0 <= evaluation["model"]["roc_auc"] <= 1
    manifest = json.loads((project / "models" / "candidate" / "model.manifest.json").read_text())
    assert manifest["frame_manifest"].endswith("train.manifest.json")
    shown = dvc(project, "metrics", "show", "--json").stdout
    assert "roc_auc" in shown


def _stage_of(argv: list[str], stages: dict[str, dict]) -> str | None:
    for name, spec in stages.items():
        cmd = spec["cmd"].split()
        if (
            cmd[:2] == ["python", "-m"]
            and argv
            and argv[0].endswith("/" + cmd[2].replace(".", "/") + ".py")
        ):
            return name
        if cmd[0] == "feast" and argv and Path(argv[0]).name == "feast" and "apply" in argv:
            return name
    return None


def test_every_param_a_stage_reads_is_declared(project: Path) -> None:
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    records = [json.loads(p.read_text()) for p in (project.parent / "params_audit").glob("*.json")]
    seen: set[str] = set()
    for record in records:
        stage = _stage_of(record["argv"], stages)
        if stage is None:
            continue
        seen.add(stage)
        declared = [str(p) for p in stages[stage].get("params", [])]
        undeclared = [
            key
            for key in record["read"]
            if not any(key == d or key.startswith(d + ".") for d in declared)
        ]
        assert not undeclared, f"stage {stage} reads params it does not declare: {undeclared}"
    assert seen == set(stages), f"no params audit for stages {set(stages) - seen}"


def test_second_repro_is_up_to_date(project: Path) -> None:
    proc = dvc(project, "status")
    assert "up to date" in proc.stdout.lower(), proc.stdout
    proc = dvc(project, "repro")
    assert "didn't change" in proc.stdout or "up to date" in proc.stdout.lower()
    for stage in ("simulate", "ingest", "validate", "transform"):
        assert f"Running stage '{stage}'" not in proc.stdout


def test_param_change_reruns_only_dependent_stages(project: Path) -> None:
    params_path = project / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["validate"]["max_bad_row_share"] = 0.2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = dvc(project, "repro")
        assert "Running stage 'validate'" in proc.stdout
        assert "Running stage 'simulate'" not in proc.stdout
        assert "Running stage 'ingest'" not in proc.stdout
    finally:
        params_path.write_text(original)
        dvc(project, "repro")


def test_frame_from_an_older_commit_reproduces_after_new_data(project: Path) -> None:
    featureops = str(BIN / "featureops")
    out = "data/adhoc/frame.parquet"  # data/frames is the train stage output
    proc = run(
        [
            featureops,
            "frame",
            "--out",
            out,
            "--start",
            "2026-01-02T00:00:00Z",
            "--end",
            "2026-01-05T00:00:00Z",
        ],
        project,
    )
    assert "manifest data/adhoc/frame.manifest.json" in proc.stdout
    manifest = json.loads((project / "data/adhoc/frame.manifest.json").read_text())
    assert manifest["git"]["commit"] and manifest["git"]["dirty"] is False
    assert manifest["data"]["data/features/sensor_stats.parquet"]["dvc"]["stage"] == "transform"

    params_path = project / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["simulate"]["seed"] += 7
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        dvc(project, "repro")
        run(["git", "commit", "-qam", "newer data"], project)
        proc = run([featureops, "reproduce", "data/adhoc/frame.manifest.json"], project)
        result = json.loads(proc.stdout)
        assert result["match"] is True
        assert any(v.startswith("dvc at") for v in result["data_sources"].values()), result
    finally:
        params_path.write_text(original)
        dvc(project, "repro")
        run(["git", "commit", "-qam", "back to the first data"], project)


def test_checkout_of_an_older_commit_restores_its_parquet(project: Path) -> None:
    features = project / "data" / "features" / "sensor_stats.parquet"
    old_bytes = features.read_bytes()
    dvc(project, "push")
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["simulate"]["seed"] += 1
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(project, "repro")
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "new seed"], project)
    assert features.read_bytes() != old_bytes

    run(["git", "checkout", "-q", "HEAD~1"], project)
    dvc(project, "checkout")
    assert features.read_bytes() == old_bytes
    run(["git", "checkout", "-q", "-"], project)
    dvc(project, "checkout")
    assert features.read_bytes() != old_bytes
