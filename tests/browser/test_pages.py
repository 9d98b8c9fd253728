"""What a person opens renders offline: GE Data Docs, the drift report, the DVC plots page,
the service's /docs and /redoc, and ``feast ui`` on the demo's registry.

Each page is opened in headless Debian chromium (``conftest.py``): no request may leave this
machine, fail or return an error status, and no console error may appear; the key content
must be there; a full-page PNG of each is saved under the test's tmp dir. Inputs are built
small and real (GE, DVC, FastAPI and Feast themselves, no mocks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.browser.conftest import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.browser
BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _wait_http(url: str, proc: subprocess.Popen | None, timeout: float, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log else ""
            pytest.fail(f"server exited with {proc.returncode} before answering {url}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log else ""
    pytest.fail(f"{url} did not answer within {timeout:.0f} s:\n{tail}")


# -- Great Expectations Data Docs -------------------------------------------------------


def test_data_docs_render_offline(open_page, tmp_path: Path) -> None:
    import great_expectations.expectations as gxe

    from featureops.validation import Validator

    frame = pd.DataFrame(
        {
            "machine_id": pd.array([1, 2, 3, 3, None], dtype="Int64"),
            "temperature": [50.0, 60.0, 500.0, 70.0, 80.0],
            "model": ["a", "b", "c", "a", "a"],
        }
    )
    validator = Validator()
    validator.run(
        "sensors",
        frame,
        [
            gxe.ExpectColumnToExist(column="machine_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="machine_id"),
            gxe.ExpectColumnValuesToBeUnique(column="machine_id"),
            gxe.ExpectColumnValuesToBeBetween(column="temperature", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeInSet(column="model", value_set=["a", "b"]),
        ],
    )
    index = validator.build_docs(tmp_path / "data_docs")

    page = open_page(index.as_uri())
    page.assert_clean("Data Docs index")
    table = page.page.locator("table").first
    assert "sensors" in table.inner_text()  # the suite, in the validation results table
    page.page.get_by_role("tab", name="Expectation Suites").click()  # tabs work without Bootstrap
    suites = page.page.locator("#Expectation-Suites")
    assert suites.is_visible() and "sensors" in suites.inner_text()
    page.page.get_by_role("tab", name="Validation Results").click()
    page.screenshot(tmp_path / "data_docs_index.png")

    # the validation result, reached the way a person does: clicking its row
    page.page.locator("tr.clickable-row").first.click()
    page.page.wait_for_load_state("networkidle")
    assert "/validations/sensors/" in page.page.url
    text = page.page.inner_text("body")
    assert "Expectation Suite: sensors" in text
    assert "values must never be null" in text
    page.page.get_by_text("Failed Only").click()  # the filter works without jQuery
    page.assert_clean("Data Docs validation result")
    page.screenshot(tmp_path / "data_docs_validation.png")

    suite = open_page((tmp_path / "data_docs" / "expectations" / "sensors.html").as_uri())
    assert "values must be unique" in suite.page.inner_text("body")
    suite.assert_clean("Data Docs expectation suite")
    suite.screenshot(tmp_path / "data_docs_suite.png")


# -- drift report ---------------------------------------------------------------------


def _drift_result() -> dict:
    """A monitoring result from the real drift statistics on synthetic data."""
    from featureops.drift import Thresholds, feature_drift, histogram, psi_numeric

    rng = np.random.default_rng(3)
    n = 2000
    reference = pd.DataFrame(
        {
            "temperature": rng.normal(60, 5, n),
            "vibration": rng.normal(1, 0.1, n),
            "model": rng.choice(["A", "B"], n),
        }
    )
    current = pd.DataFrame(
        {
            "temperature": rng.normal(66, 5, n),  # drifted
            "vibration": rng.normal(1, 0.1, n),
            "model": rng.choice(["A", "B"], n),
        }
    )
    t = Thresholds()
    features = feature_drift(reference, current, list(reference.columns), t)
    ref_p, cur_p = rng.beta(2, 20, n), rng.beta(2, 18, n)
    prediction = {
        "psi": psi_numeric(ref_p, cur_p),
        "reference_mean": float(ref_p.mean()),
        "current_mean": float(cur_p.mean()),
        "histogram": histogram(ref_p, cur_p),
        "drift": False,
    }
    drifted = sorted(f for f, r in features.items() if r["drift"])
    return {
        "model": "registry/v1",
        "model_sha256": "0" * 64,
        "reference_rows": n,
        "current_rows": n,
        "current_window": ["2026-01-22 00:00:00+00:00", "2026-01-29 00:00:00+00:00"],
        "thresholds": t.__dict__,
        "drifted_features": drifted,
        "drifted_share": len(drifted) / len(features),
        "feature_drift": bool(drifted),
        "prediction_drift": False,
        "performance_drop": False,
        "alert": bool(drifted),
        "features": features,
        "prediction": prediction,
        "performance": {"rows": 0, "drop": False},
    }


def test_drift_report_renders_offline(open_page, tmp_path: Path) -> None:
    from featureops.drift_report import render_report

    result = _drift_result()
    assert result["drifted_features"] == ["temperature"]
    report = tmp_path / "drift_report.html"
    report.write_text(render_report(result), encoding="utf-8")

    page = open_page(report.as_uri())
    page.assert_clean("drift report")
    assert "ALERT" in page.page.inner_text(".banner")
    chart = page.page.locator("svg[aria-label='temperature']")
    assert chart.count() == 1 and chart.locator("rect").count() > 10
    assert "(drift)" in (chart.text_content() or "")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    page.screenshot(tmp_path / "drift_report.png")


# -- DVC plots ------------------------------------------------------------------------


def test_dvc_plots_render_offline(open_page, tmp_path: Path) -> None:
    """``dvc plots show`` with the repository's ``.dvc/config`` (its HTML template)."""
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True, env=_env())
    shutil.copy(REPO_ROOT / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(REPO_ROOT / "plots_templates", root / "plots_templates")
    plots = root / "plots"
    plots.mkdir()
    fpr = np.linspace(0, 1, 21)
    roc = [{"fpr": float(x), "tpr": float(min(1.0, np.sqrt(x) * 1.1))} for x in fpr]
    (plots / "roc.json").write_text(json.dumps(roc))
    confusion = [
        {"actual": a, "predicted": p} for a, p in [(0, 0)] * 30 + [(1, 1)] * 5 + [(0, 1)] * 3
    ]
    (plots / "confusion.json").write_text(json.dumps(confusion))
    (root / "dvc.yaml").write_text(
        "plots:\n"
        "  - plots/roc.json:\n"
        "      x: fpr\n      y: tpr\n      template: simple\n"
        "      title: ROC (evaluation window)\n"
        "  - plots/confusion.json:\n"
        "      x: actual\n      y: predicted\n      template: confusion\n"
        "      title: Confusion matrix at the threshold\n"
    )
    proc = subprocess.run(
        [str(BIN / "dvc"), "plots", "show"], cwd=root, capture_output=True, text=True, env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    index = root / "dvc_plots" / "index.html"
    html = index.read_text()
    assert "cdn.jsdelivr.net" not in html and "window.vegaEmbed" in html  # our template

    page = open_page(index.as_uri())
    # the ROC curve, drawn by vega-embed (SVG): its axes and the curve itself
    roc = page.page.locator("#plots_roc_json svg").first
    roc.wait_for(timeout=15_000)
    text = roc.text_content() or ""
    assert "ROC (evaluation window)" in text and "fpr" in text and "tpr" in text, text
    assert roc.locator("path[aria-roledescription='line mark']").count() >= 1
    page.page.locator("#plots_confusion_json svg").first.wait_for(timeout=15_000)
    page.assert_clean("DVC plots page")
    page.screenshot(tmp_path / "dvc_plots.png")


# -- the service's /docs and /redoc -------------------------------------------------------


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[str]:
    """The prediction service's app (no model needed for its docs: lifespan off)."""
    import uvicorn

    from featureops.serving.app import create_app

    app = create_app(REPO_ROOT / "params.yaml", tmp_path)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/openapi.json", None, 30, None)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def test_service_docs_render_offline(open_page, docs_server: str, tmp_path: Path) -> None:
    page = open_page(f"{docs_server}/docs")
    predict = page.page.locator("#operations-default-predict_predict_post")
    predict.wait_for(timeout=15_000)
    assert "/predict" in predict.inner_text()
    predict.locator(".opblock-summary").click()  # expand: the request body schema shows
    page.page.get_by_text("entities").first.wait_for(timeout=10_000)
    page.assert_clean("/docs (Swagger UI)")
    page.screenshot(tmp_path / "docs.png")

    redoc = open_page(f"{docs_server}/redoc")
    redoc.page.get_by_text("/predict").first.wait_for(timeout=15_000)
    redoc.assert_clean("/redoc (ReDoc)")
    redoc.screenshot(tmp_path / "redoc.png")


# -- feast ui -------------------------------------------------------------------------


@pytest.fixture
def feast_ui(tmp_path: Path) -> Iterator[str]:
    """``feast ui`` over a registry of the demo's definitions (``feature_repo/``) applied to
    small synthetic feature tables."""
    from tests.feature_data import make_feast_project

    root = tmp_path / "feast"
    root.mkdir()
    make_feast_project(root, n_machines=3, hours=24)
    apply = subprocess.run(
        [str(BIN / "feast"), "-c", "feature_repo", "apply", "--no-progress"],
        cwd=root,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert apply.returncode == 0, apply.stderr[-3000:]
    port = free_port()
    log = tmp_path / "feast_ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "feast"), "-c", "feature_repo", "ui", "-h", "127.0.0.1", "-p", str(port)],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/", proc, 120, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_feast_ui_renders_offline(open_page, feast_ui: str, tmp_path: Path) -> None:
    page = open_page(f"{feast_ui}/p/featureops/feature-service")
    page.page.get_by_text("failure_model_v1").first.wait_for(timeout=30_000)
    page.assert_clean("feast ui, feature services")
    page.screenshot(tmp_path / "feast_ui_feature_services.png")

    page.page.get_by_text("failure_model_v1").first.click()
    page.page.get_by_text("sensor_stats").first.wait_for(timeout=30_000)  # its feature views
    page.page.wait_for_load_state("networkidle")
    page.assert_clean("feast ui, feature service failure_model_v1")
    page.screenshot(tmp_path / "feast_ui_failure_model_v1.png")
