"""The prediction service on a real Feast online store, with a registered model."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from featureops import registry
from featureops.config import Paths
from featureops.feature_log import read_feature_log
from featureops.frames import build_frame, open_store
from featureops.materialize import materialize_incremental
from featureops.parity import check_parity
from featureops.serving import create_app
from featureops.training import predict_proba, train_model
from tests.conftest import write_params
from tests.feature_data import make_feast_project
from tests.integration.test_feature_store import SERVICE, feast_apply

pytestmark = pytest.mark.integration
T0 = pd.Timestamp("2026-01-01", tz="UTC")
END = T0 + pd.Timedelta(hours=71)  # last synthetic reading


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serving")
    params, _ = make_feast_project(root, n_machines=6, hours=72)
    params["serving"]["reference_time"] = END.isoformat()
    write_params(root, params)
    feast_apply(root)
    store = open_store(root / "feature_repo")
    materialize_incremental(store)
    rng = np.random.default_rng(0)
    entities = pd.DataFrame(
        {
            "machine_id": rng.integers(1, 7, 400),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 71, 400), unit="h"),
        }
    )
    frame = build_frame(store, SERVICE, entities)
    frame["failure_next_24h"] = (frame["vibration_z"] > 0).astype(int)
    model = train_model(frame, "failure_next_24h", {"C": 1.0, "class_weight": "balanced"})
    paths = Paths.from_params(params, root)
    registry.save_model(
        model,
        paths.candidate,
        {
            "feature_service": SERVICE,
            "threshold": 0.5,
            "features": list(model.feature_names_in_),
        },
    )
    registry.promote(paths.registry, registry.register(paths.candidate, paths.registry))
    return root, params, store, paths


@pytest.fixture
def client(project):
    root = project[0]
    with TestClient(create_app(root / "params.yaml", root)) as c:
        yield c


def test_prediction_equals_the_model_on_the_offline_row(project, client: TestClient) -> None:
    _, _, store, paths = project
    response = client.post("/predict", json={"machine_ids": [1, 2, 3]})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "v1" and body["feature_service"] == SERVICE
    model, _ = registry.load_production(paths.registry)
    offline = build_frame(
        store, SERVICE, pd.DataFrame({"machine_id": [1, 2, 3], "event_timestamp": [END] * 3})
    )
    expected = predict_proba(model, offline)
    for pred, p in zip(body["predictions"], expected, strict=True):
        assert pred["status"] == "ok"
        assert pred["probability"] == pytest.approx(p, rel=1e-9)
        assert pred["label"] == int(p >= 0.5)
        assert pred["features"]["vibration_z"] == pytest.approx(
            offline.loc[offline.machine_id == pred["machine_id"], "vibration_z"].iloc[0]
        )


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"machine_ids": [1, 999]}, 404, "unknown machine ids: [999]"),
        ({"machine_ids": []}, 422, None),
        ({"machine_ids": "1"}, 422, None),
        ({"ids": [1]}, 422, None),
        ({"machine_ids": list(range(1, 102))}, 400, "too many machine ids: 101 > 100"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(client: TestClient, body, status: int, detail) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status
    if detail:
        assert response.json()["detail"] == detail


def test_stale_features_are_flagged_not_guessed(project) -> None:
    root, params, _, _ = project
    stale_root = root.parent / "stale"
    shutil.copytree(root, stale_root, dirs_exist_ok=True)
    stale = {
        **params,
        "serving": {
            **params["serving"],
            "reference_time": (END + pd.Timedelta(hours=5)).isoformat(),
        },
    }
    write_params(stale_root, stale)
    with TestClient(create_app(stale_root / "params.yaml", root)) as c:
        pred = c.post("/predict", json={"machine_ids": [1]}).json()["predictions"][0]
    assert pred["status"] == "stale_features"
    assert pred["probability"] is None and pred["label"] is None
    assert "vibration_z" in pred["stale_features"]


def test_metrics_health_and_openapi(client: TestClient) -> None:
    client.post("/predict", json={"machine_ids": [1]})
    client.post("/predict", json={"machine_ids": [999]})
    text = client.get("/metrics").text
    assert 'featureops_requests_total{status="200"}' in text
    assert 'featureops_requests_total{status="404"}' in text
    assert "featureops_request_latency_seconds_bucket" in text
    assert "featureops_prediction_probability_count" in text
    assert client.get("/health").json()["model_version"] == "v1"
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_api_key_is_enforced_when_configured(project, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project[0]
    monkeypatch.setenv("FEATUREOPS_API_KEY", "s3cret")
    with TestClient(create_app(root / "params.yaml", root)) as c:
        assert c.post("/predict", json={"machine_ids": [1]}).status_code == 401
        ok = c.post("/predict", json={"machine_ids": [1]}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200


def test_tampered_model_is_refused(project) -> None:
    root, _, _, paths = project
    artifact = paths.registry / "v1" / registry.MODEL_FILE
    original = artifact.read_bytes()
    artifact.write_bytes(original + b"\0")
    try:
        app = create_app(root / "params.yaml", root)
        with (
            pytest.raises(registry.ModelIntegrityError, match="does not match its manifest"),
            TestClient(app),
        ):
            pass
    finally:
        artifact.write_bytes(original)


def test_feature_log_parity_passes_clean_and_flags_skew(project) -> None:
    root, _, store, paths = project
    shutil.rmtree(paths.feature_log, ignore_errors=True)
    with TestClient(create_app(root / "params.yaml", root)) as c:
        for ids in ([1, 2], [3, 4, 5]):
            assert c.post("/predict", json={"machine_ids": ids}).status_code == 200
    log = read_feature_log(paths.feature_log)  # flushed at shutdown
    assert len(log) == 5 and set(log["model_version"]) == {"v1"}
    assert check_parity(store, log)["ok"]
    skewed = log.copy()
    skewed.loc[2, "temperature_z"] += 0.01
    report = check_parity(store, skewed)
    assert not report["ok"]
    assert report["services"][SERVICE]["mismatches"] == {"temperature_z": 1}


def test_promote_rollback_and_unknown_version(project) -> None:
    _, _, _, paths = project
    v2 = registry.register(paths.candidate, paths.registry)
    registry.promote(paths.registry, v2)
    assert registry.production_version(paths.registry) == v2
    assert registry.rollback(paths.registry)["version"] == "v1"
    with pytest.raises(registry.RegistryError, match="unknown model version 'v9'"):
        registry.promote(paths.registry, "v9")
    assert os.path.exists(paths.registry / "production.json")


def test_drift_status_is_exposed_as_gauges(project, client: TestClient) -> None:
    _, _, _, paths = project
    monitor_file = paths.metrics / "monitor.json"
    monitor_file.parent.mkdir(parents=True, exist_ok=True)
    monitor_file.write_text(
        '{"alert": true, "prediction_drift": false, '
        '"features": {"vibration_z": {"drift": true}, "rpm_z": {"drift": false}}}'
    )
    try:
        text = client.get("/metrics").text
    finally:
        monitor_file.unlink()
    assert 'featureops_feature_drift{feature="vibration_z"} 1.0' in text
    assert 'featureops_feature_drift{feature="rpm_z"} 0.0' in text
    assert 'featureops_feature_drift{feature="__alert__"} 1.0' in text
