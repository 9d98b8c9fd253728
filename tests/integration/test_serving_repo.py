"""Tiny throw-away Feast projects for the serving tests, and the online reader's equality
with Feast's own ``get_online_features`` on them.

Two repositories, both with their own entities, views, on-demand views and service over
small Parquet files, applied with ``FeatureStore.apply`` and materialized with Feast's own
``store.materialize``:

- ``machines``: one INT64 key (``machine_id``); a sensor view with a 3 h TTL, a profile view
  without TTL holding a string feature, a python-mode on-demand view (the code proposed
  for the demo's ``sensor_trends``) and a pandas-mode one;
- ``accounts``: a STRING key (``user_id``) and a composite key (``user_id``, ``merchant_id``
  INT64), with a python-mode on-demand view over the composite-key view.

The models registered are scikit-learn pipelines of training's shape
(``featureops.training.make_model``), through ``featureops.registry``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from featureops import registry
from featureops.config import Paths
from featureops.frames import build_frame
from featureops.io import write_parquet
from featureops.online import build_reader
from featureops.training import make_model
from tests.conftest import load_repo_params

pytestmark = pytest.mark.integration

T0 = pd.Timestamp("2026-01-01", tz="UTC")
HOURS = 48
END = T0 + pd.Timedelta(hours=HOURS - 1)  # last reading of the live entities

MACHINES_REPO = r'''
"""Throw-away repo: machines by an INT64 key."""
from datetime import timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, String

DATA = Path(__file__).resolve().parent / "tables"

machine = Entity(name="machine", join_keys=["machine_id"], value_type=ValueType.INT64)
sensors = FeatureView(
    name="sensors",
    entities=[machine],
    ttl=timedelta(hours=3),
    schema=[Field(name=n, dtype=Float64) for n in (
        "temperature", "vibration", "temperature_mean_6h", "temperature_mean_24h",
        "vibration_mean_6h", "vibration_mean_24h",
    )],
    source=FileSource(path=str(DATA / "sensors.parquet"), timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
)
profile = FeatureView(
    name="profile",
    entities=[machine],
    ttl=timedelta(0),
    schema=[Field(name="model", dtype=String), Field(name="location", dtype=String)],
    source=FileSource(path=str(DATA / "profile.parquet"), timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
)


@on_demand_feature_view(
    sources=[sensors[["vibration_mean_6h", "vibration_mean_24h", "temperature_mean_6h",
                      "temperature_mean_24h"]]],
    schema=[Field(name="vibration_trend", dtype=Float64),
            Field(name="temperature_trend", dtype=Float64)],
    mode="python",
)
def sensor_trends(inputs: dict) -> dict:
    # the python-mode version proposed for the demo's feature_repo (same code)
    import re

    out = {}
    for col in ("vibration", "temperature"):
        windows = sorted(
            int(m.group(1)) for name in inputs if (m := re.fullmatch(rf"{col}_mean_(\d+)h", name))
        )
        short = inputs[f"{col}_mean_{windows[0]}h"]
        long = inputs[f"{col}_mean_{windows[-1]}h"]
        out[f"{col}_trend"] = [
            None if a is None or b is None else float(a - b) for a, b in zip(short, long)
        ]
    return out


@on_demand_feature_view(
    sources=[sensors[["temperature", "temperature_mean_24h"]]],
    schema=[Field(name="temperature_delta", dtype=Float64)],
    mode="pandas",
)
def temperature_delta(inputs: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame(index=inputs.index)
    out["temperature_delta"] = (inputs["temperature"] - inputs["temperature_mean_24h"]).astype(
        "float64"
    )
    return out


service = FeatureService(
    name="machine_model_v1",
    features=[
        sensors[["temperature", "vibration", "temperature_mean_6h", "temperature_mean_24h"]],
        profile[["model"]],
        sensor_trends,
        temperature_delta,
    ],
)
OBJECTS = [machine, sensors, profile, sensor_trends, temperature_delta, service]
'''

ACCOUNTS_REPO = '''
"""Throw-away repo: a STRING key and a composite (STRING, INT64) key."""
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String

DATA = Path(__file__).resolve().parent / "tables"

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
merchant = Entity(name="merchant", join_keys=["merchant_id"], value_type=ValueType.INT64)
user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=timedelta(0),
    schema=[Field(name="tier", dtype=String), Field(name="age", dtype=Float64)],
    source=FileSource(path=str(DATA / "user_profile.parquet"), timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
)
user_merchant = FeatureView(
    name="user_merchant",
    entities=[user, merchant],
    ttl=timedelta(hours=6),
    schema=[Field(name="spend_7d", dtype=Float64), Field(name="visits_7d", dtype=Int64)],
    source=FileSource(path=str(DATA / "user_merchant.parquet"), timestamp_field="event_timestamp",
                      created_timestamp_column="created"),
)


@on_demand_feature_view(
    sources=[user_merchant],
    schema=[Field(name="spend_per_visit", dtype=Float64)],
    mode="python",
)
def spend_ratio(inputs: dict) -> dict:
    return {
        "spend_per_visit": [
            None if s is None or not v else s / v
            for s, v in zip(inputs["spend_7d"], inputs["visits_7d"])
        ]
    }


service = FeatureService(
    name="fraud_v1",
    features=[user_profile, user_merchant, spend_ratio],
)
OBJECTS = [user, merchant, user_profile, user_merchant, spend_ratio, service]
'''

STORE_YAML = """project: {project}
provider: local
registry:
  path: data/registry.db
  cache_ttl_seconds: 60
offline_store:
  type: duckdb
online_store:
  type: sqlite
  path: data/online_store.db
entity_key_serialization_version: 3
auth:
  type: no_auth
"""


@dataclass
class Project:
    root: Path
    params: dict
    paths: Paths
    store: Any
    service: str
    keys: list[str]
    tables: dict[str, pd.DataFrame]

    @property
    def params_file(self) -> Path:
        return self.root / "params.yaml"


def project_params(**serving: Any) -> dict:
    keys = load_repo_params()["paths"]  # whatever paths the project declares, in the tmp dir
    return {
        "paths": {k: f"data/{k}" for k in keys},
        "feast": {"repo": "feature_repo"},
        "serving": {
            "max_ids": 100,
            "reference_time": END.isoformat(),
            "api_key_env": "FEATUREOPS_TEST_API_KEY",
            "log_flush_rows": 1000,
            "log_flush_seconds": 30,
            "refresh_seconds": 0.2,
            "max_body_bytes": 16384,
            **serving,
        },
    }


def write_params(root: Path, params: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _stamps(df: pd.DataFrame) -> pd.DataFrame:
    # known as soon as it happened: the serving tests judge features "as of" END, and the
    # END rows must count offline too (training frames are "as known at" by default)
    df["created"] = df["event_timestamp"]
    return df


def machines_tables(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Machines 1-6 read hourly for 48 h; 5 stops 5 h early (stale at END); 6 has null
    readings at the end; 7 has a profile only (missing features); 8 is unknown."""
    rows = []
    for m in range(1, 7):
        last = HOURS - 5 if m == 5 else HOURS
        for h in range(last):
            rows.append((m, T0 + pd.Timedelta(hours=h)))
    sensors = pd.DataFrame(rows, columns=["machine_id", "event_timestamp"])
    for c in (
        "temperature",
        "vibration",
        "temperature_mean_6h",
        "temperature_mean_24h",
        "vibration_mean_6h",
        "vibration_mean_24h",
    ):
        sensors[c] = rng.normal(50, 10, len(sensors))
    last6 = (sensors.machine_id == 6) & (sensors.event_timestamp == END)
    sensors.loc[last6, ["vibration", "temperature_mean_6h"]] = np.nan
    profile = pd.DataFrame(
        {
            "machine_id": range(1, 8),
            "event_timestamp": T0 - pd.Timedelta(days=30),
            "model": ["A100", "B200", "C300", "A100", "B200", "C300", "A100"],
            "location": "north",
        }
    )
    return {"sensors": _stamps(sensors), "profile": _stamps(profile)}


def accounts_tables(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Users u1-u4 x merchants 10/20 hourly; u3 has a null age; u5 a profile only."""
    rows = [
        (u, m, T0 + pd.Timedelta(hours=h))
        for u in ("u1", "u2", "u3", "u4")
        for m in (10, 20)
        for h in range(HOURS)
    ]
    um = pd.DataFrame(rows, columns=["user_id", "merchant_id", "event_timestamp"])
    um["spend_7d"] = rng.gamma(2.0, 50.0, len(um))
    um["visits_7d"] = rng.integers(0, 9, len(um))
    profile = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4", "u5"],
            "event_timestamp": T0 - pd.Timedelta(days=30),
            "tier": ["gold", "silver", "gold", "bronze", "silver"],
            "age": [31.0, 45.0, np.nan, 27.0, 52.0],
        }
    )
    return {"user_merchant": _stamps(um), "user_profile": _stamps(profile)}


KINDS = {
    "machines": (MACHINES_REPO, machines_tables, "machine_model_v1", ["machine_id"]),
    "accounts": (ACCOUNTS_REPO, accounts_tables, "fraud_v1", ["user_id", "merchant_id"]),
}


def _load_definitions(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def training_entities(kind: str, rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    ts = T0 + pd.to_timedelta(rng.integers(6, HOURS, n), unit="h")
    if kind == "machines":
        return pd.DataFrame({"machine_id": rng.integers(1, 7, n), "event_timestamp": ts})
    return pd.DataFrame(
        {
            "user_id": rng.choice(["u1", "u2", "u3", "u4"], n),
            "merchant_id": rng.choice([10, 20], n),
            "event_timestamp": ts,
        }
    )


def fit_model(frame: pd.DataFrame, features: list[str], seed: int = 0):
    """Training's model pipeline on ``features``, with a synthetic label."""
    numeric = [c for c in features if frame[c].dtype != object]
    categorical = [c for c in features if frame[c].dtype == object]
    x = frame[numeric].fillna(0).to_numpy()
    score = x @ np.random.default_rng(seed).normal(size=len(numeric))
    label = (score > np.median(score)).astype(int)
    model = make_model(numeric, categorical, {"C": 1.0, "class_weight": "balanced"})
    model.fit(frame[numeric + categorical], label)
    return model


def store_yaml(project: str, online_store: str | None = None) -> str:
    """feature_store.yaml: SQLite online, or the given ``online_store:`` block (e.g. Redis)."""
    text = STORE_YAML.format(project=project)
    if online_store is None:
        return text
    sqlite = "online_store:\n  type: sqlite\n  path: data/online_store.db\n"
    assert sqlite in text
    return text.replace(sqlite, online_store)


def make_project(
    root: Path, kind: str, seed: int = 0, online_store: str | None = None, **serving: Any
) -> Project:
    """Write, apply and materialize a tiny repo; register and promote a model on it.

    ``online_store``: a feature_store.yaml ``online_store:`` block (default: SQLite).
    """
    from feast import FeatureStore

    source, tables_of, service, keys = KINDS[kind]
    rng = np.random.default_rng(seed)
    repo = root / "feature_repo"
    (repo / "tables").mkdir(parents=True)
    tables = tables_of(rng)
    for name, df in tables.items():
        write_parquet(df, repo / "tables" / f"{name}.parquet")
    (repo / "feature_store.yaml").write_text(store_yaml(f"tiny_{kind}", online_store))
    (repo / "definitions.py").write_text(source)
    store = FeatureStore(repo_path=str(repo))
    store.apply(_load_definitions(repo / "definitions.py", f"tiny_repo_{kind}_{root.name}").OBJECTS)
    store.materialize(T0 - pd.Timedelta(days=31), END + pd.Timedelta(hours=1))
    params = project_params(**serving)
    write_params(root, params)
    paths = Paths.from_params(params, root)
    frame = build_frame(store, service, training_entities(kind, rng))
    features = [f for f in build_reader(store, service).features]
    model = fit_model(frame, features, seed)
    registry.save_model(
        model,
        paths.candidate,
        {"feature_service": service, "threshold": 0.5, "features": features},
    )
    registry.promote(paths.registry, registry.register(paths.candidate, paths.registry))
    return Project(root, params, paths, store, service, keys, tables)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, None only to None."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------------------------
# The reader equals Feast's get_online_features.


@pytest.fixture(scope="module", params=sorted(KINDS))
def project(request, tmp_path_factory) -> Project:
    return make_project(tmp_path_factory.mktemp(f"repo-{request.param}"), request.param)


def entity_batches(project: Project) -> list[dict[str, list[Any]]]:
    if project.keys == ["machine_id"]:
        return [
            {"machine_id": [1]},
            {"machine_id": [3, 1, 3, 8, 7, 6, 5]},  # duplicates, unknown, profile-only, nulls
            {"machine_id": list(range(1, 9)) * 12},
        ]
    return [
        {"user_id": ["u1"], "merchant_id": [10]},
        {"user_id": ["u2", "u3", "u5", "u9", "u2"], "merchant_id": [20, 10, 10, 10, 20]},
        {"user_id": ["u1", "u2", "u3", "u4"] * 20, "merchant_id": [10, 20] * 40},
    ]


def test_reader_returns_what_feast_get_online_features_returns(project: Project) -> None:
    reader = build_reader(project.store, project.service)
    assert list(reader.join_keys) == project.keys
    con = reader.connect()
    service = project.store.get_feature_service(project.service)
    for entities in entity_batches(project):
        ours = reader.read(con, entities)
        feast = project.store.get_online_features(features=service, entity_rows=entities).to_dict()
        assert set(ours.values) == set(feast) - set(project.keys)
        for feature, values in ours.values.items():
            assert len(values) == len(feast[feature])
            for i, (a, b) in enumerate(zip(values, feast[feature], strict=True)):
                assert same(a, b), (feature, i, a, b)


def test_reader_reports_found_rows_and_event_times(project: Project) -> None:
    reader = build_reader(project.store, project.service)
    con = reader.connect()
    if project.keys == ["machine_id"]:
        rows = reader.read(con, {"machine_id": [1, 5, 7, 8]})
        assert rows.unknown_rows() == [3]
        assert rows.found["sensors"] == [True, True, False, False]
        last5 = (END - pd.Timedelta(hours=5)).timestamp()
        assert rows.event_ts["sensors"][:2] == [int(END.timestamp()), int(last5)]
        assert reader.ttl_seconds == {"sensors": 3 * 3600.0, "profile": 0.0}
        assert reader.derived_from == {
            "sensor_trends": ("sensors",),
            "temperature_delta": ("sensors",),
        }
    else:
        rows = reader.read(con, {"user_id": ["u1", "u5", "u9"], "merchant_id": [10, 10, 10]})
        assert rows.unknown_rows() == [2]
        assert rows.found == {
            "user_profile": [True, True, False],
            "user_merchant": [True, False, False],
        }


def test_python_mode_on_demand_view_gives_the_same_values_offline(project: Project) -> None:
    """frames.build_frame applies ODFVs with transform_arrow: python mode must agree."""
    reader = build_reader(project.store, project.service)
    con = reader.connect()
    entities = entity_batches(project)[2]
    online = reader.read(con, entities)
    frame = build_frame(
        project.store,
        project.service,
        pd.DataFrame({**entities, "event_timestamp": [END] * online.n}),
    )
    limit = END.timestamp()
    fresh = [  # rows every stored view has, within its TTL (offline hides the others)
        i
        for i in range(online.n)
        if all(
            online.event_ts[v][i] is not None and (not ttl or online.event_ts[v][i] >= limit - ttl)
            for v, ttl in reader.ttl_seconds.items()
        )
    ]
    assert fresh
    for feature in (f for f in reader.features if reader.feature_view[f] in reader.derived_from):
        for i in fresh:
            a, b = online.values[feature][i], frame[feature].iloc[i]
            if a is None:
                assert pd.isna(b), (feature, i, b)
            else:
                assert a == pytest.approx(float(b), abs=1e-12), (feature, i)
