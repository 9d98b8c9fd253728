"""The DVC metrics are one small summary per stage; the details are outputs, not metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines import summarize
from tests.conftest import REPO_ROOT

DETAILS = {
    "simulate": {
        "rows": {
            "sensors": 103,
            "machines": 2,
            "maintenance": 3,
            "failures": 1,
            "sensor_readings": 96,
        },
        "defects": {"missing": 2, "duplicate": 1, "late": 4},
        "failures": 1,
        "seed": 7,
    },
    "ingest": {
        "sensors": {"rows_in": 103, "accepted": 100, "quarantined": 3, "duplicates": 1},
        "machines": {"rows_in": 2, "accepted": 2, "quarantined": 0, "duplicates": 0},
        "total": {"rows_in": 105, "accepted": 102, "quarantined": 3},
    },
    "validate": {
        "sensors": {
            "rows_in": 100,
            "accepted": 98,
            "quarantined": 2,
            "expectations": {
                "expect_column_values_to_be_between(rpm)": {"success": False, "unexpected": 2},
                "expect_column_values_to_not_be_null(rpm)": {"success": True, "unexpected": 0},
                "expect_column_to_exist(rpm)": {"success": True, "unexpected": 0},
            },
        },
        "machines": {
            "rows_in": 2,
            "accepted": 2,
            "quarantined": 0,
            "expectations": {
                "expect_column_values_to_be_unique(machine_id)": {"success": True, "unexpected": 0}
            },
        },
        "total": {"rows_in": 102, "accepted": 100, "quarantined": 2, "bad_row_share": 0.02},
    },
    "transform": {
        "sources": {"sensors": 98, "machines": 2},
        "tables": {"a": {"rows_in": 98, "rows_out": 98}, "b": {"rows_in": 2, "rows_out": 2}},
    },
    "materialize": {
        "a": {"rows_in_window": 98, "online_entities": 2, "full_refresh": True, "seconds": 0.3},
        "b": {"rows_in_window": 2, "online_entities": 2, "full_refresh": False, "seconds": 0.1},
    },
    "evaluate": {
        "model": {
            "rows": 50,
            "roc_auc": 0.856738049,
            "pr_auc": 0.21606,
            "f1": 0.25,
            "precision": 0.15,
            "recall": 0.78,
            "positive_rate": 0.04,
        },
        "baseline_prevalence": {"pr_auc": 0.044, "roc_auc": 0.5},
        "model_sha256": "ab" * 32,
        "eval_window": ["2026-01-21", "2026-01-28"],
    },
    "monitor": {
        "alert": False,
        "current_rows": 40,
        "drifted_features": ["vibration"],
        "prediction_psi": 0.02231,
        "pr_auc_current": 0.19226742,
        "pr_auc_relative_drop": 0.2110640,
        "features": {"vibration": {"drift": True, "psi": 0.4}},
    },
}


def test_each_stage_summary_is_a_few_numbers_with_shared_names() -> None:
    summaries = {stage: fn(DETAILS[stage]) for stage, fn in summarize.SUMMARIES.items()}
    assert summaries["simulate"] == {"rows_out": 109, "defects": 7}
    assert summaries["ingest"] == {"rows_in": 105, "accepted": 102, "quarantined": 3}
    assert summaries["validate"] == {
        "rows_in": 102,
        "accepted": 100,
        "quarantined": 2,
        "checks_failed": 1,
    }
    assert summaries["transform"] == {"rows_in": 100, "rows_out": 100}
    assert summaries["materialize"] == {"rows_in": 100, "entities": 4}
    assert summaries["evaluate"] == {
        "pr_auc": 0.2161,
        "roc_auc": 0.8567,
        "f1": 0.25,
        "baseline_pr_auc": 0.044,
    }
    assert summaries["monitor"] == {
        "alert": False,
        "drifted": 1,
        "prediction_psi": 0.0223,
        "window_pr_auc": 0.1923,
        "pr_auc_drop": 0.2111,
    }
    for stage, summary in summaries.items():  # flat: one column per key in `dvc metrics show`
        assert all(isinstance(v, int | float | bool) for v in summary.values()), stage
    columns = {key for summary in summaries.values() for key in summary}
    assert len(columns) <= 16, sorted(columns)  # the whole `dvc metrics show` table
    model = set(summaries["evaluate"]) | set(summaries["monitor"])
    data = {
        key for stage, s in summaries.items() if stage not in ("evaluate", "monitor") for key in s
    }
    assert not model & data  # `dvc exp show` names model columns without a file prefix


def test_summarize_command_strips_run_times_from_the_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("paths:\n  metrics: out/metrics\n")
    details = tmp_path / "out" / "metrics" / "materialize.json"
    details.parent.mkdir(parents=True)
    details.write_text(json.dumps(DETAILS["materialize"]))
    assert summarize.main(["materialize"]) == 0
    cleaned = json.loads(details.read_text())
    assert "seconds" not in json.dumps(cleaned) and cleaned["a"]["rows_in_window"] == 98
    summary = json.loads(
        (tmp_path / "out" / "metrics" / "summary" / "materialize.json").read_text()
    )
    assert summary == {"rows_in": 100, "entities": 4}


def _entries(spec: dict, kind: str) -> dict[str, dict]:
    out = {}
    for entry in spec.get(kind, []):
        path, opts = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
        out[path] = opts or {}
    return out


def test_dvc_yaml_declares_only_the_summaries_as_metrics() -> None:
    """The model's summaries (and simulate's) in their stages, the data stages' at top level:
    DVC lists stage metrics first, so `dvc exp show` starts with the model's."""
    dvc_yaml = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    stages = dvc_yaml["stages"]
    top_level = dvc_yaml.get("metrics", [])
    for name in summarize.SUMMARIES:
        spec = stages[name]
        metrics_dir = "metrics" if name == "simulate" else "${paths.metrics}"
        summary = f"{metrics_dir}/summary/{name}.json"
        if name in ("simulate", "evaluate", "monitor"):
            assert list(_entries(spec, "metrics")) == [summary], name
        else:
            assert summary in top_level and "metrics" not in spec, name
            assert _entries(spec, "outs")[summary] == {"cache": False, "persist": True}, name
        details = _entries(spec, "outs").get(f"{metrics_dir}/{name}.json")
        assert details == {"cache": False, "persist": True}, name  # committed, not a metric
        assert "pipelines/summarize.py" in spec["deps"], name
    declared = [p for s in stages.values() for p in _entries(s, "metrics")] + top_level
    assert len(declared) == len(summarize.SUMMARIES)
    assert list(stages).index("simulate") == 0 and stages["evaluate"]["metrics"]
