"""Serving with a STRING key and a composite (STRING, INT64) key, end to end."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from featureops import registry
from featureops.feature_log import read_feature_log
from featureops.frames import build_frame
from featureops.parity import check_parity
from featureops.serving import create_app
from featureops.serving.model import ServingModel
from tests.integration.test_serving_repo import END, Project, make_project, same

pytestmark = pytest.mark.integration
SERVICE = "fraud_v1"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("keys"), "accounts")


@pytest.fixture(scope="module")
def client(project: Project):
    with TestClient(create_app(project.params_file, project.root)) as c:
        yield c


def post(client: TestClient, users: list, merchants: list):
    return client.post("/predict", json={"entities": {"user_id": users, "merchant_id": merchants}})


def test_string_and_composite_keys_predict_like_the_offline_model(project, client) -> None:
    users, merchants = ["u1", "u2", "u4", "u1"], [10, 20, 20, 20]
    response = post(client, users, merchants)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["feature_service"] == SERVICE
    model, manifest = registry.load_production(project.paths.registry)
    offline = build_frame(
        project.store,
        SERVICE,
        pd.DataFrame({"user_id": users, "merchant_id": merchants, "event_timestamp": [END] * 4}),
    )
    expected = model.predict_proba(offline[manifest["features"]])[:, 1]
    for i, pred in enumerate(body["predictions"]):
        assert pred["entity"] == {"user_id": users[i], "merchant_id": merchants[i]}
        assert pred["status"] == "ok"
        assert pred["probability"] == pytest.approx(expected[i], abs=1e-9)
        assert pred["features"]["tier"] == offline["tier"].iloc[i]
        assert pred["features"]["visits_7d"] == offline["visits_7d"].iloc[i]
        assert type(pred["features"]["visits_7d"]) is int
        assert pred["features"]["spend_per_visit"] == pytest.approx(
            offline["spend_per_visit"].iloc[i], nan_ok=True
        )


def test_features_equal_feasts_get_online_features(project, client) -> None:
    users, merchants = ["u3", "u2", "u1"], [10, 20, 20]
    preds = post(client, users, merchants).json()["predictions"]
    service = project.store.get_feature_service(SERVICE)
    feast = project.store.get_online_features(
        features=service, entity_rows={"user_id": users, "merchant_id": merchants}
    ).to_dict()
    for i, pred in enumerate(preds):
        for feature, value in pred["features"].items():
            assert same(value, feast[feature][i]), (feature, i, value, feast[feature][i])


def test_missing_half_of_a_composite_key_and_unknown_entities(client) -> None:
    preds = post(client, ["u3", "u5"], [10, 10]).json()["predictions"]
    assert preds[0]["status"] == "missing_features"  # u3's age is null
    assert preds[0]["missing_features"] == ["age"]
    assert preds[1]["status"] == "missing_features"  # u5 has a profile, no (u5, 10) row
    assert set(preds[1]["missing_features"]) == {"spend_7d", "visits_7d", "spend_per_visit"}
    response = post(client, ["u1", "nobody", "u1"], [10, 10, 99])
    assert response.status_code == 404
    assert response.json()["detail"] == (
        'unknown entities: [{"user_id": "nobody", "merchant_id": 10}]'
    )


@pytest.mark.parametrize(
    ("entities", "detail"),
    [
        ({"user_id": [5], "merchant_id": [10]}, "entities.user_id[0]: 5 is not a STRING"),
        ({"user_id": [None], "merchant_id": [10]}, "entities.user_id[0]: null is not a STRING"),
        (
            {"user_id": ["u1"], "merchant_id": ["10"]},
            'entities.merchant_id[0]: "10" is not a INT64',
        ),
        (
            {"user_id": ["u1"], "merchant_id": [10.0]},
            "entities.merchant_id[0]: 10.0 is not a INT64",
        ),
        ({"user_id": ["u1"], "merchant_id": [False]}, "entities.merchant_id[0]: false is not"),
        ({"user_id": ["u1"], "merchant_id": [-(2**63) - 1]}, "entities.merchant_id[0]"),
        ({"user_id": ["u1"]}, "entities lacks join key(s) ['merchant_id']"),
        ({"user_id": ["u1", "u2"], "merchant_id": [10]}, "entities lists differ in length"),
        ({"user_id": ["u1"], "merchant_id": [10], "user": ["u1"]}, "unknown key(s) ['user']"),
    ],
)
def test_values_are_checked_against_the_entity_types(client, entities, detail) -> None:
    response = client.post("/predict", json={"entities": entities})
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_feature_log_keeps_key_types_and_parity_holds(project) -> None:
    shutil.rmtree(project.paths.feature_log, ignore_errors=True)
    with TestClient(create_app(project.params_file, project.root)) as c:
        assert post(c, ["u1", "u2", "u3"], [10, 20, 10]).status_code == 200
        assert post(c, ["u4", "u5"], [20, 20]).status_code == 200
    log = read_feature_log(project.paths.feature_log)
    assert list(log["user_id"]) == ["u1", "u2", "u3", "u4", "u5"]
    assert log["merchant_id"].dtype == np.int64 and log["user_id"].dtype == object
    report = check_parity(project.store, log)
    assert report["ok"], report
    assert report["services"][SERVICE]["join_keys"] == ["user_id", "merchant_id"]
    skewed = log.copy()
    skewed.loc[3, "spend_per_visit"] += 1.0
    report = check_parity(project.store, skewed)
    assert report["services"][SERVICE]["mismatches"] == {"spend_per_visit": 1}
    assert report["services"][SERVICE]["examples"][0]["entity"] == {
        "user_id": "u4",
        "merchant_id": 20,
    }


def test_numpy_model_equals_scikit_learn_on_an_evaluation_frame(project) -> None:
    model, manifest = registry.load_production(project.paths.registry)
    rng = np.random.default_rng(5)
    n = 400
    frame = build_frame(
        project.store,
        SERVICE,
        pd.DataFrame(
            {
                "user_id": rng.choice(["u1", "u2", "u3", "u4", "u5", "u9"], n),
                "merchant_id": rng.choice([10, 20, 30], n),
                "event_timestamp": END - pd.to_timedelta(rng.integers(0, 40, n), unit="h"),
            }
        ),
    )
    features = manifest["features"]
    assert frame[features].isna().any().any()  # nulls are imputed the same way
    serving = ServingModel(model, features)
    assert serving.compiled
    columns = {f: [None if pd.isna(v) else v for v in frame[f]] for f in features}
    got = serving.predict_proba(columns, n)
    expected = model.predict_proba(frame[features])[:, 1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
