"""The whole pipeline under real DVC in a throw-away git repository, on a tiny demo.

The read-only checks look at the session's built demo (``built_demo``, reproduced once with
the params audit on); a test that changes the project works in a relocated copy of it, and
the data-version tests share ``two_versions`` (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import ADHOC_FRAME, SENSOR_STATS
from tests.project import (  # noqa: F401  (re-exported: other tests import them from here)
    AUDIT_SITE,
    BIN,
    BuiltDemo,
    build_project,
    copy_project,
    dvc,
    project_files,
    run,
    tiny_params,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(built_demo: BuiltDemo) -> Path:
    """The built demo itself: tests using it only read it (a no-op repro changes nothing)."""
    return built_demo.root


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


def test_every_param_a_stage_reads_is_declared(built_demo: BuiltDemo) -> None:
    stages = yaml.safe_load((built_demo.root / "dvc.yaml").read_text())["stages"]
    records = [json.loads(p.read_text()) for p in built_demo.audit.glob("*.json")]
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


def test_model_list_on_an_empty_registry_says_what_to_do(project: Path) -> None:
    assert not (project / "models" / "registry").exists()
    proc = run([str(BIN / "featureops"), "model", "list"], project)
    assert proc.stdout.strip() == (
        "no models registered yet: run `dvc repro` then `featureops model register`"
    ), proc.stdout
    assert not proc.stdout.startswith("*")  # `make serve` greps '^\*' for a production model


def test_param_change_reruns_only_dependent_stages(built_demo: BuiltDemo, tmp_path: Path) -> None:
    project = copy_project(built_demo, tmp_path / "project")
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["validate"]["max_bad_row_share"] = 0.2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    proc = dvc(project, "repro")
    assert "Running stage 'validate'" in proc.stdout
    assert "Running stage 'simulate'" not in proc.stdout
    assert "Running stage 'ingest'" not in proc.stdout


def test_frame_from_an_older_commit_reproduces_after_new_data(two_versions: dict) -> None:
    """An ad-hoc frame built at the first data version (``featureops frame``, in the fixture)
    reproduces after new data was reproduced and committed."""
    project = two_versions["root"]
    assert (
        f"manifest {ADHOC_FRAME.replace('.parquet', '.manifest.json')}"
        in (two_versions["adhoc_stdout"])
    )
    manifest = json.loads((project / "data/adhoc/frame.manifest.json").read_text())
    assert manifest["git"]["commit"] == two_versions["first_commit"]
    assert manifest["git"]["dirty"] is False
    assert manifest["data"][SENSOR_STATS]["dvc"]["stage"] == "transform"
    assert (
        manifest["data"][SENSOR_STATS]["md5"]
        != (two_versions["second"]["data"][SENSOR_STATS]["md5"])
    )  # the data it was built from is no longer in the workspace

    proc = run([str(BIN / "featureops"), "reproduce", "data/adhoc/frame.manifest.json"], project)
    result = json.loads(proc.stdout)
    assert result["match"] is True
    assert any(v.startswith("dvc at") for v in result["data_sources"].values()), result


def test_checkout_of_an_older_commit_restores_its_parquet(two_versions: dict) -> None:
    project = two_versions["root"]
    features = project / SENSOR_STATS
    old_bytes = two_versions["first_features"]
    assert features.read_bytes() != old_bytes  # the new seed's data, committed

    run(["git", "checkout", "-q", two_versions["first_commit"]], project)
    try:
        dvc(project, "checkout")
        assert features.read_bytes() == old_bytes
    finally:
        run(["git", "checkout", "-q", "-"], project)
        dvc(project, "checkout")
    assert features.read_bytes() != old_bytes
