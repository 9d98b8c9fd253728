"""The prediction service on a real Feast online store, with a registered model.

The project is a tiny throw-away Feast repo keyed by an INT64 ``machine_id`` (see
``test_serving_repo``); string and composite keys are in ``test_serving_keys``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from featureops import registry
from featureops.feature_log import read_feature_log
from featureops.frames import build_frame
from featureops.parity import check_parity
from featureops.serving import create_app
from tests.integration.test_serving_repo import END, Project, make_project, write_params

pytestmark = pytest.mark.integration
SERVICE = "machine_model_v1"
API_KEY_ENV = "FEATUREOPS_TEST_API_KEY"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("serving"), "machines")


@pytest.fixture
def client(project: Project):
    with TestClient(create_app(project.params_file, project.root)) as c:
        yield c


def predict(client: TestClient, ids: list, **kwargs) -> httpx.Response:
    return client.post("/predict", json={"entities": {"machine_id": ids}}, **kwargs)


def test_prediction_equals_the_model_on_the_offline_row(project: Project, client) -> None:
    response = predict(client, [1, 2, 3])
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "v1" and body["feature_service"] == SERVICE
    assert pd.Timestamp(body["feature_time"]) == END
    model, manifest = registry.load_production(project.paths.registry)
    offline = build_frame(
        project.store,
        SERVICE,
        pd.DataFrame({"machine_id": [1, 2, 3], "event_timestamp": [END] * 3}),
    )
    expected = model.predict_proba(offline[manifest["features"]])[:, 1]
    for pred, p, machine in zip(body["predictions"], expected, [1, 2, 3], strict=True):
        assert pred["entity"] == {"machine_id": machine}
        assert pred["status"] == "ok"
        assert pred["missing_features"] == [] and pred["stale_features"] == []
        assert pred["probability"] == pytest.approx(p, abs=1e-9)
        assert pred["label"] == int(p >= 0.5)
        row = offline[offline.machine_id == machine].iloc[0]
        assert set(pred["features"]) == set(manifest["features"])
        for feature, value in pred["features"].items():
            if isinstance(value, str):
                assert value == row[feature]
            else:
                assert value == pytest.approx(row[feature], abs=1e-12), feature


def test_duplicates_keep_request_order(client) -> None:
    preds = predict(client, [3, 1, 3]).json()["predictions"]
    assert [p["entity"]["machine_id"] for p in preds] == [3, 1, 3]
    assert preds[0] == preds[2]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"entities": {"machine_id": [1, 999]}}, 404, 'unknown entities: [{"machine_id": 999}]'),
        ({"entities": {"machine_id": []}}, 422, "entities.machine_id is empty"),
        ({"entities": {"machine_id": "1"}}, 422, "entities.machine_id must be a list of values"),
        ({"entities": {"machine_id": [7.5]}}, 422, "entities.machine_id[0]: 7.5 is not a INT64"),
        ({"entities": {"machine_id": [1, True]}}, 422, "entities.machine_id[1]: true is not"),
        ({"entities": {"machine_id": [2**63]}}, 422, "entities.machine_id[0]: 9223372036854775808"),
        ({"entities": {"machine_id": ["1"]}}, 422, 'entities.machine_id[0]: "1" is not a INT64'),
        ({"entities": {"machine_id": [None]}}, 422, "entities.machine_id[0]: null is not"),
        ({"entities": {}}, 422, "entities lacks join key(s) ['machine_id']"),
        ({"entities": {"machine_id": [1], "x": [1]}}, 422, "unknown key(s) ['x'] in entities"),
        ({"machine_ids": [1]}, 422, "the body must be"),
        ({"entities": {"machine_id": [1]}, "features": []}, 422, "unexpected: ['features']"),
        ([1], 422, "the body must be"),
        ({"entities": {"machine_id": list(range(1, 102))}}, 400, "too many entities: 101 > 100"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(client, body, status: int, detail: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status
    assert detail in response.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"entities": {"machine_id": [1e400]}}', "entities.machine_id[0]: inf is not a INT64"),
        (b'{"entities": {"machine_id": [18446744073709551616]}}', "entities.machine_id[0]"),
        (b'{"entities": {"machine_id": [NaN]}}', "entities.machine_id[0]: nan is not"),
        (b'{"entities": ', "body is not valid JSON"),
    ],
)
def test_numbers_json_parsers_disagree_on_still_name_the_key(client, raw: bytes, detail) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_body_size_limit_gives_413(client) -> None:
    big = {"entities": {"machine_id": [1] * 5000}}  # ~15 KB of "1, " over the 16 KiB limit
    response = client.post("/predict", content=json.dumps(big).encode() + b" " * 2000)
    assert response.status_code == 413
    assert "over 16384 bytes" in response.json()["detail"]


def test_missing_and_stale_features_are_flagged_not_guessed(client) -> None:
    preds = {p["entity"]["machine_id"]: p for p in predict(client, [5, 6, 7]).json()["predictions"]}
    stale = preds[5]  # sensors 5 h old at END, TTL 3 h
    assert stale["status"] == "stale_features"
    assert stale["probability"] is None and stale["label"] is None
    # every input derived from the sensor view is stale, on-demand outputs included
    assert set(stale["stale_features"]) == {
        "temperature",
        "vibration",
        "temperature_mean_6h",
        "temperature_mean_24h",
        "vibration_trend",
        "temperature_trend",
        "temperature_delta",
    }
    missing = preds[6]  # null readings at END
    assert missing["status"] == "missing_features"
    assert set(missing["missing_features"]) == {
        "vibration",
        "temperature_mean_6h",
        "temperature_trend",
    }
    assert missing["probability"] is None
    profile_only = preds[7]  # known to the profile view, never read by a sensor
    assert profile_only["status"] == "missing_features"
    assert profile_only["features"]["model"] == "A100"


def test_metrics_count_every_status(client) -> None:
    predict(client, [1])
    predict(client, [999])
    client.post("/predict", json={"entities": {"machine_id": [1.5]}})
    predict(client, list(range(1, 102)))
    client.post("/predict", content=b"[" + b"1," * 20000 + b"1]")
    text = client.get("/metrics").text
    for status in (200, 404, 422, 400, 413):
        assert f'featureops_requests_total{{status="{status}"}} 1.0' in text, status
    assert "featureops_request_latency_seconds_bucket" in text
    assert "featureops_prediction_probability_count 1.0" in text
    health = client.get("/health").json()
    assert health["model_version"] == "v1" and health["compiled_model"] is True
    assert health["join_keys"] == {"machine_id": "INT64"}
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_errors_are_counted_as_500(project: Project) -> None:
    app = create_app(project.params_file, project.root)
    with TestClient(app, raise_server_exceptions=False) as c:
        holder = app.state.featureops["holder"]

        def boom(*args, **kwargs):
            raise RuntimeError("boom")

        state = holder.state
        object.__setattr__(state, "predict", boom)
        try:
            assert predict(c, [1]).status_code == 500
        finally:
            object.__delattr__(state, "predict")
        assert 'featureops_requests_total{status="500"} 1.0' in c.get("/metrics").text


def test_api_key_is_enforced_when_configured(project: Project, monkeypatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "s3cret")
    with TestClient(create_app(project.params_file, project.root)) as c:
        assert predict(c, [1]).status_code == 401
        assert predict(c, [1], headers={"X-API-Key": "wrong"}).status_code == 401
        assert predict(c, [1], headers={"X-API-Key": "s3cret"}).status_code == 200
        assert 'featureops_requests_total{status="401"} 2.0' in c.get("/metrics").text


def test_tampered_model_is_refused(project: Project) -> None:
    artifact = project.paths.registry / "v1" / registry.MODEL_FILE
    original = artifact.read_bytes()
    artifact.write_bytes(original + b"\0")
    try:
        app = create_app(project.params_file, project.root)
        with (
            pytest.raises(registry.ModelIntegrityError, match="does not match its manifest"),
            TestClient(app),
        ):
            pass
    finally:
        artifact.write_bytes(original)


def test_feature_log_parity_passes_clean_and_flags_skew(project: Project) -> None:
    shutil.rmtree(project.paths.feature_log, ignore_errors=True)
    with TestClient(create_app(project.params_file, project.root)) as c:
        for ids in ([1, 2], [3, 4, 5], [6, 7]):
            assert predict(c, ids).status_code == 200
    log = read_feature_log(project.paths.feature_log)  # flushed at shutdown
    assert len(log) == 7 and set(log["model_version"]) == {"v1"}
    assert log["machine_id"].dtype == np.int64
    assert list(log["status"]) == ["ok"] * 4 + ["stale_features"] + ["missing_features"] * 2
    report = check_parity(project.store, log)
    assert report["ok"], report
    assert report["services"][SERVICE]["join_keys"] == ["machine_id"]
    skewed = log.copy()
    skewed.loc[2, "temperature"] += 0.01
    skewed.loc[1, "model"] = "Z999"
    report = check_parity(project.store, skewed)
    assert not report["ok"]
    assert report["services"][SERVICE]["mismatches"] == {"temperature": 1, "model": 1}
    example = report["services"][SERVICE]["examples"][0]
    assert example["entity"] == {"machine_id": 3} and example["feature"] == "temperature"


def test_model_and_registry_refresh_off_the_request_path(project: Project) -> None:
    paths = project.paths
    with TestClient(create_app(project.params_file, project.root)) as c:
        assert c.get("/health").json()["model_version"] == "v1"
        v2 = registry.register(paths.candidate, paths.registry)
        registry.promote(paths.registry, v2)
        try:
            deadline = time.monotonic() + 20
            while c.get("/health").json()["model_version"] != v2:
                assert time.monotonic() < deadline, "the new model was never picked up"
                time.sleep(0.1)
            assert predict(c, [1]).json()["model_version"] == v2
        finally:
            registry.rollback(paths.registry)
        deadline = time.monotonic() + 20
        while c.get("/health").json()["model_version"] != "v1":
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_promote_rollback_and_unknown_version(project: Project) -> None:
    paths = project.paths
    v2 = registry.register(paths.candidate, paths.registry)
    registry.promote(paths.registry, v2)
    assert registry.production_version(paths.registry) == v2
    assert registry.rollback(paths.registry)["version"] == "v1"
    with pytest.raises(registry.RegistryError, match="unknown model version 'v9'"):
        registry.promote(paths.registry, "v9")
    assert os.path.exists(paths.registry / "production.json")


def test_drift_status_is_exposed_as_gauges(project: Project, client) -> None:
    monitor_file = project.paths.metrics / "monitor.json"
    monitor_file.parent.mkdir(parents=True, exist_ok=True)
    monitor_file.write_text(
        '{"alert": true, "prediction_drift": false, '
        '"features": {"vibration": {"drift": true}, "temperature": {"drift": false}}}'
    )
    try:
        text = client.get("/metrics").text
    finally:
        monitor_file.unlink()
    assert 'featureops_feature_drift{feature="vibration"} 1.0' in text
    assert 'featureops_feature_drift{feature="temperature"} 0.0' in text
    assert 'featureops_feature_drift{feature="__alert__"} 1.0' in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_log_on_a_timer_and_flush_on_sigterm(project: Project) -> None:
    """A real server (2 uvicorn workers): rows reach disk on the timer without further
    requests, the rest at SIGTERM; /metrics sums both workers."""
    root = project.root.parent / "served"
    shutil.copytree(project.root, root, ignore=shutil.ignore_patterns("feature_log"))
    params = {**project.params, "serving": {**project.params["serving"], "log_flush_seconds": 1}}
    # the copied registry.db records the original's store: serve the original's repo
    params["feast"] = {"repo": str(project.root / "feature_repo")}
    write_params(root, params)
    log_dir = project.paths.feature_log.relative_to(project.root)
    port = _free_port()
    server_log = root / "server.log"
    with server_log.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "featureops.serving",
                "--params",
                "params.yaml",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # its own process group: cleanup reaches the workers
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        pids: set[int] = set()
        while len(pids) < 2:  # both workers answer (a new connection each time)
            assert proc.poll() is None, server_log.read_text()[-3000:]
            assert time.monotonic() < deadline, server_log.read_text()[-3000:]
            try:
                pids.add(httpx.get(f"{url}/health", timeout=5).json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.3)
        with httpx.Client(timeout=5) as http:
            for i in range(20):
                ids = [1 + i % 4]
                r = http.post(f"{url}/predict", json={"entities": {"machine_id": ids}})
                assert r.status_code == 200
            assert http.post(f"{url}/predict", json={"x": 1}).status_code == 422
            text = http.get(f"{url}/metrics").text
            assert 'featureops_requests_total{status="200"} 20.0' in text
            assert 'featureops_requests_total{status="422"} 1.0' in text
            deadline = time.monotonic() + 15  # each worker's timer writes, with no request

            def logged() -> int:
                parts = list((root / log_dir).glob("part-*.parquet"))
                return len(read_feature_log(root / log_dir)) if parts else 0

            while logged() < 20:
                assert time.monotonic() < deadline, f"{logged()} rows logged after the timer"
                time.sleep(0.2)
            for i in range(5):
                http.post(f"{url}/predict", json={"entities": {"machine_id": [i + 1]}})
        proc.send_signal(signal.SIGTERM)  # the supervisor; it stops its workers
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert len(read_feature_log(root / log_dir)) == 25
