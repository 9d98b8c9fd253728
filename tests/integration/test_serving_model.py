"""The model applied with numpy equals scikit-learn's probabilities (no Feast needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from featureops.serving.model import ServingModel
from featureops.training import make_model


def frame(n: int, seed: int, categories=("A100", "B200", "C300")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "temperature": rng.normal(60, 12, n),
            "vibration": rng.gamma(2.0, 3.0, n),
            "hours": rng.integers(0, 500, n).astype("float64"),
            "constant": 1.0,  # zero variance: scikit-learn scales by 1
            "model": rng.choice(list(categories), n).astype(object),
            "site": rng.choice(["north", "south"], n).astype(object),
        }
    )
    for col in ("temperature", "vibration", "model"):
        df.loc[rng.random(n) < 0.05, col] = None
    return df


NUMERIC = ["temperature", "vibration", "hours", "constant"]
CATEGORICAL = ["model", "site"]


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_compiled_probabilities_equal_scikit_learn(class_weight) -> None:
    train = frame(2000, 0)
    label = ((train["vibration"].fillna(6) > 7) ^ (train["model"] == "B200")).astype(int)
    model = make_model(NUMERIC, CATEGORICAL, {"C": 0.5, "class_weight": class_weight})
    model.fit(train[NUMERIC + CATEGORICAL], label)
    inputs = list(model.feature_names_in_)
    serving = ServingModel(model, inputs)
    assert serving.compiled
    evaluation = frame(3000, 1, categories=("A100", "B200", "C300", "D400"))  # an unseen model
    columns = {c: [None if pd.isna(v) else v for v in evaluation[c]] for c in inputs}
    got = serving.predict_proba(columns, len(evaluation))
    expected = model.predict_proba(evaluation[inputs])[:, 1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got - expected).max() < 1e-12
    one = serving.predict_proba({c: [columns[c][7]] for c in inputs}, 1)
    assert one[0] == pytest.approx(expected[7], abs=1e-12)


def test_other_models_go_through_scikit_learn() -> None:
    train = frame(300, 2)[NUMERIC].fillna(0)
    model = RandomForestClassifier(n_estimators=5, random_state=0)
    model.fit(train, (train["vibration"] > 6).astype(int))
    serving = ServingModel(model, NUMERIC)
    assert not serving.compiled
    got = serving.predict_proba({c: list(train[c]) for c in NUMERIC}, len(train))
    np.testing.assert_array_equal(got, model.predict_proba(train)[:, 1])
