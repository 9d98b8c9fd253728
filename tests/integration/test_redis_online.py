"""Redis as the online store, by configuration only: materialize, reads, /predict, parity.

A real ``redis-server`` (``tests.integration.redis_server``; each test its own database)
against the same projects on SQLite (the fast paths of ``featureops.store.online.sqlite``):

- the demo-shaped repo materialized with ``materialize_incremental`` into both stores holds
  the same online values for every entity (``get_online_features`` and our reader);
- incremental materialize into Redis keeps its bookkeeping in
  ``data/feast/materialize_state.json``: a second run writes nothing, new rows only write
  their entities, a flushed Redis is found by the probe and re-materialized;
- the serving app on a Redis-configured repo answers ``/predict`` exactly like the same
  repo on SQLite (INT64 key; STRING and composite keys), and parity passes on its log;
- the materialize DVC stage runs on Redis with ``feast.online_store`` naming the state file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from featureops.feature_log import read_feature_log
from featureops.frames import open_store
from featureops.io import write_parquet
from featureops.materialize import materialize_incremental
from featureops.online import build_reader
from featureops.parity import check_parity
from featureops.serving import create_app
from featureops.store.online import is_sqlite
from featureops.store.online.stock import STATE_FILE
from featureops.store.registry import apply_repo
from tests.feature_data import make_feast_project
from tests.integration.redis_server import RedisServer, redis_server  # noqa: F401
from tests.integration.test_serving_repo import Project, make_project, same

pytestmark = [pytest.mark.integration, pytest.mark.redis]
N_MACHINES = 6
SQLITE_BLOCK = "online_store:\n  type: sqlite\n  path: ../data/feast/online_store.db\n"


def demo_project(root: Path, redis: RedisServer | None = None, db: int = 0):
    """The demo-shaped repo (tests.feature_data) on SQLite, or on ``redis`` database ``db``."""
    params, tables = make_feast_project(root, n_machines=N_MACHINES, hours=48)
    config = root / "feature_repo" / "feature_store.yaml"
    if redis is not None:
        text = config.read_text()
        assert SQLITE_BLOCK in text
        config.write_text(text.replace(SQLITE_BLOCK, redis.feast_yaml(db)))
    apply_repo(root / "feature_repo")
    return params, tables, open_store(root / "feature_repo")


def online_values(store, machines: list[int]) -> dict[str, list]:
    features = [
        f"{v.name}:{f.name}" for v in store.list_feature_views() if v.online for f in v.features
    ]
    rows = [{"machine_id": m} for m in machines]
    return store.get_online_features(features=features, entity_rows=rows).to_dict()


def assert_same(a: dict[str, list], b: dict[str, list]) -> None:
    assert set(a) == set(b)
    for name, values in a.items():
        assert len(values) == len(b[name]), name
        for i, (x, y) in enumerate(zip(values, b[name], strict=True)):
            assert same(x, y), (name, i, x, y)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer):  # noqa: F811
    """The same data materialized with featureops into SQLite and into Redis."""
    _, _, sqlite_store = demo_project(tmp_path_factory.mktemp("on-sqlite"))
    _, _, redis_store = demo_project(tmp_path_factory.mktemp("on-redis"), redis_server, db=1)
    assert is_sqlite(sqlite_store.config) and not is_sqlite(redis_store.config)
    return (
        sqlite_store,
        materialize_incremental(sqlite_store),
        redis_store,
        materialize_incremental(redis_store),
    )


def test_redis_holds_what_sqlite_holds(pair) -> None:
    sqlite_store, sqlite_runs, redis_store, redis_runs = pair
    machines = [*range(1, N_MACHINES + 1), 99]  # 99: unknown
    assert_same(online_values(redis_store, machines), online_values(sqlite_store, machines))
    # the metrics agree too: same windows, same entities
    for a, b in zip(sqlite_runs, redis_runs, strict=True):
        assert (a.view, a.rows_scanned, a.entities_written) == (
            b.view,
            b.rows_scanned,
            b.entities_written,
        )
        assert a.full_refresh and b.full_refresh and b.reason == "first run"
        assert a.online_entities == b.online_entities == N_MACHINES


def test_service_reader_on_redis_equals_feast_and_sqlite(pair) -> None:
    sqlite_store, _, redis_store, _ = pair
    service = "failure_model_v1"
    on_redis, on_sqlite = build_reader(redis_store, service), build_reader(sqlite_store, service)
    assert on_redis.db_path is None and on_sqlite.db_path is not None
    entities = {"machine_id": [3, 1, 3, 99, *range(1, N_MACHINES + 1)]}
    ours = on_redis.read(on_redis.connect(), entities)
    theirs = on_sqlite.read(on_sqlite.connect(), entities)
    feast = redis_store.get_online_features(
        features=redis_store.get_feature_service(service), entity_rows=entities
    ).to_dict()
    assert ours.unknown_rows() == theirs.unknown_rows() == [3]
    assert ours.found == theirs.found and ours.event_ts == theirs.event_ts
    for feature, values in ours.values.items():
        for i, (a, b, c) in enumerate(
            zip(values, theirs.values[feature], feast[feature], strict=True)
        ):
            assert same(a, b) and same(a, c), (feature, i, a, b, c)


def test_incremental_materialize_into_redis_keeps_its_bookkeeping(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    params, tables, store = demo_project(root, redis_server, db=2)
    first = {r.view: r for r in materialize_incremental(store)}
    state_file = root / "data" / "feast" / STATE_FILE
    state = json.loads(state_file.read_text())
    assert state["project"] == store.project and state["online_store"] == "redis"
    assert set(state["views"]) == set(first)
    for name, recorded in state["views"].items():
        assert recorded["end"] == first[name].end.isoformat()
        assert recorded["entities"] == N_MACHINES and recorded["probe"]
    assert not (root / "data" / "feast" / "online_store.db").exists()  # no SQLite anywhere

    again = materialize_incremental(store)  # nothing new: nothing written
    assert all(not r.full_refresh and r.entities_written == 0 for r in again)
    assert all(r.rows_scanned == 0 for r in again)

    # one more hour for machines 1 and 2: only they are written, incrementally
    path = root / params["paths"]["features"] / "sensor_stats.parquet"
    sensors = tables["sensor_stats"]
    last = sensors[sensors.event_timestamp == sensors.event_timestamp.max()]
    new = last[last.machine_id.isin([1, 2])].copy()
    new["event_timestamp"] += pd.Timedelta(hours=1)
    new["created"] += pd.Timedelta(hours=1)
    new["temperature_z"] = [123.0, -7.5]
    write_parquet(pd.concat([sensors, new]), path)
    result = {r.view: r for r in materialize_incremental(store)}["sensor_stats"]
    assert not result.full_refresh and result.entities_written == 2 and result.rows_scanned == 2
    online = store.get_online_features(
        features=["sensor_stats:temperature_z"], entity_rows=[{"machine_id": m} for m in (1, 2, 3)]
    ).to_dict()
    assert online["temperature_z"][:2] == [123.0, -7.5]
    assert online["temperature_z"][2] == pytest.approx(
        float(last[last.machine_id == 3]["temperature_z"].iloc[0])
    )

    # a Redis that lost its data: the probe finds out, the views are rebuilt
    before = online_values(store, list(range(1, N_MACHINES + 1)))
    redis_server.client(2).flushdb()
    rebuilt = {r.view: r for r in materialize_incremental(store)}
    assert all(r.full_refresh and "probe" in r.reason for r in rebuilt.values())
    assert_same(online_values(store, list(range(1, N_MACHINES + 1))), before)


def test_a_full_refresh_on_redis_removes_entities_the_source_no_longer_has(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    params, tables, store = demo_project(root, redis_server, db=3)
    materialize_incremental(store)
    path = root / params["paths"]["features"] / "machine_profile.parquet"
    profile = tables["machine_profile"]
    write_parquet(profile[profile.machine_id != 3], path)  # restated: machine 3 deleted
    result = {r.view: r for r in materialize_incremental(store)}["machine_profile"]
    assert result.full_refresh and result.reason.startswith("source rows restated")
    online = store.get_online_features(
        features=["machine_profile:model"], entity_rows=[{"machine_id": m} for m in (2, 3)]
    ).to_dict()
    assert online["model"][0] is not None and online["model"][1] is None


# ------------------------------------------------------------------------------------
# The service on Redis answers like the service on SQLite.


def _serving_pair(tmp: pytest.TempPathFactory, redis: RedisServer, kind: str, db: int):
    sqlite = make_project(tmp.mktemp(f"{kind}-sqlite"), kind)
    on_redis = make_project(tmp.mktemp(f"{kind}-redis"), kind, online_store=redis.feast_yaml(db))
    assert not is_sqlite(on_redis.store.config)
    return sqlite, on_redis


def _predictions(project: Project, batches: list[dict[str, list]]) -> list:
    out = []
    with TestClient(create_app(project.params_file, project.root)) as client:
        for entities in batches:
            response = client.post("/predict", json={"entities": entities})
            body = response.json()
            if response.status_code == 200:
                body = {k: v for k, v in body.items() if k not in ("request_id",)}
            out.append((response.status_code, body))
    return out


@pytest.mark.parametrize(
    ("kind", "db", "batches"),
    [
        (
            "machines",
            4,
            [
                {"machine_id": [1, 2, 3]},
                {"machine_id": [3, 1, 3, 6, 5, 7]},  # duplicates, nulls, stale, profile only
                {"machine_id": [1, 8]},  # 8 is unknown: 404
            ],
        ),
        (
            "accounts",
            5,
            [
                {"user_id": ["u1", "u2", "u4", "u1"], "merchant_id": [10, 20, 20, 20]},
                {"user_id": ["u3", "u5"], "merchant_id": [10, 10]},
                {"user_id": ["u9"], "merchant_id": [10]},
            ],
        ),
    ],
)
def test_predict_on_redis_equals_predict_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,  # noqa: F811
    kind: str,
    db: int,
    batches: list,
) -> None:
    sqlite, on_redis = _serving_pair(tmp_path_factory, redis_server, kind, db)
    ours = _predictions(on_redis, batches)
    assert [status for status, _ in ours] == [200, 200, 404]
    assert ours == _predictions(sqlite, batches)
    # the feature log of the Redis-served requests passes parity (offline == served)
    log = read_feature_log(on_redis.paths.feature_log)
    assert len(log) == sum(len(next(iter(b.values()))) for b in batches[:2])
    report = check_parity(on_redis.store, log)
    assert report["ok"], report
    shutil.rmtree(on_redis.paths.feature_log, ignore_errors=True)


def test_the_materialize_stage_runs_on_redis_by_configuration(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``python -m pipelines.materialize`` on a Redis repo: its DVC output is the state file."""
    import yaml

    from pipelines import materialize as stage

    root = tmp_path / "project"
    root.mkdir()
    params, _, _ = demo_project(root, redis_server, db=6)
    monkeypatch.chdir(root)  # DVC runs stage commands from the project root
    assert stage.main(["--params", "params.yaml"]) == 1  # still names the SQLite file
    assert "feast.online_store" in capsys.readouterr().err
    params["feast"]["online_store"] = f"data/feast/{STATE_FILE}"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stage.main(["--params", "params.yaml"]) == 0
    metrics = json.loads((root / params["paths"]["metrics"] / "materialize.json").read_text())
    state = json.loads((root / "data" / "feast" / STATE_FILE).read_text())
    assert set(metrics) == set(state["views"]) and all(m["full_refresh"] for m in metrics.values())
