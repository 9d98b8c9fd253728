"""Feast over the feature Parquet: apply, materialize, training frames, online parity, lineage.

Real Feast (CLI apply, registry, SQLite online store) on small synthetic feature tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featureops.config import Paths
from featureops.frames import FrameError, build_frame, compile_plan, open_store
from featureops.io import write_parquet
from featureops.labels import LabelSpec, label_rows
from featureops.materialize import materialize_incremental
from featureops.training_frames import manifest_path, reproduce, write_training_frame
from tests.feature_data import make_feast_project

pytestmark = pytest.mark.integration
SERVICE = "failure_model_v1"
BIN = Path(sys.executable).parent
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def feast_apply(root: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(BIN / "feast"), "-c", "feature_repo", "apply", "--no-progress"],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("feast")
    params, tables = make_feast_project(root, n_machines=6, hours=72)
    feast_apply(root)
    store = open_store(root / "feature_repo")
    return root, params, tables, store


def random_entities(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "machine_id": rng.integers(1, 9, n),  # 7 and 8 have no data
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-5, 80 * 60, n), unit="min"),
        }
    )


def test_frame_equals_feasts_own_offline_store(project, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _, _, store = project
    # Feast's DuckDB offline store reads source paths relative to the working directory
    # (they are relative to the project folder: README, "Feast's own commands").
    monkeypatch.chdir(root)
    entities = random_entities(np.random.default_rng(3))
    ours = build_frame(store, SERVICE, entities, as_known_at=False)  # Feast's semantics
    service = store.get_feature_service(SERVICE)
    feast = store.get_historical_features(entity_df=entities, features=service).to_df()
    assert len(ours) == len(entities)
    assert list(ours["machine_id"]) == list(entities["machine_id"])  # order kept
    feature_cols = [c for c in ours.columns if c not in entities.columns]
    assert "vibration_trend" in feature_cols and "model" in feature_cols
    key = ["machine_id", "event_timestamp"]
    ours_sorted = ours.sort_values(key, kind="stable").reset_index(drop=True)
    feast_sorted = feast.sort_values(key, kind="stable").reset_index(drop=True)
    for col in feature_cols:
        a, b = ours_sorted[col], feast_sorted[col]
        if a.dtype == object:
            assert (a.fillna("<na>") == b.fillna("<na>")).all(), col
        else:
            np.testing.assert_allclose(
                a.astype(float), b.astype(float), equal_nan=True, err_msg=col
            )
    assert ours_sorted[feature_cols].notna().any().all()  # not trivially all-null


def test_online_reads_match_the_offline_frame_at_materialization_time(project) -> None:
    _, _, _tables, store = project
    results = materialize_incremental(store)
    end = max(r.end for r in results)
    machines = list(range(1, 7))
    online = store.get_online_features(
        features=store.get_feature_service(SERVICE),
        entity_rows=[{"machine_id": m} for m in machines],
    ).to_df()
    # Online holds each machine's latest row; offline "as known at" sees it once it is known
    # (the synthetic rows are created 1 h after their timestamp).
    known = pd.Timestamp(end) + pd.Timedelta(hours=1)
    entities = pd.DataFrame({"machine_id": machines, "event_timestamp": known})
    offline = build_frame(store, SERVICE, entities)
    for col in [c for c in offline.columns if c not in entities.columns]:
        for i in range(len(machines)):
            a, b = online[col].iloc[i], offline[col].iloc[i]
            if isinstance(b, str):
                assert a == b, (col, i)
            else:
                assert a == pytest.approx(b, rel=1e-9), (col, i, a, b)


def test_materialize_is_incremental(project) -> None:
    root, params, tables, store = project
    materialize_incremental(store)  # catch up
    again = {r.view: r for r in materialize_incremental(store)}
    assert all(r.entities_written == 0 for r in again.values())
    sensors = tables["sensor_stats"]
    newer = sensors[sensors["event_timestamp"] == sensors["event_timestamp"].max()].copy()
    newer["event_timestamp"] += pd.Timedelta(hours=1)
    newer["created"] += pd.Timedelta(hours=1)
    newer["temperature_z"] = 42.0
    path = root / params["paths"]["features"] / "sensor_stats.parquet"
    write_parquet(pd.concat([sensors, newer]), path)
    try:
        result = {r.view: r for r in materialize_incremental(store)}
        assert result["sensor_stats"].rows_scanned == len(newer)
        assert result["sensor_stats"].entities_written == newer["machine_id"].nunique()
        online = store.get_online_features(
            features=["sensor_stats:temperature_z"], entity_rows=[{"machine_id": 1}]
        ).to_df()
        assert online["temperature_z"].iloc[0] == 42.0
    finally:
        write_parquet(sensors, path)


def test_as_known_at_hides_rows_created_after_the_entity_time(project) -> None:
    _, _, _, store = project
    # feature rows are created 1 h after their event time
    entities = pd.DataFrame({"machine_id": [1], "event_timestamp": [T0 + pd.Timedelta(hours=10)]})
    normal = build_frame(store, SERVICE, entities, as_known_at=False)
    known = build_frame(store, SERVICE, entities, as_known_at=True)
    sensors = project[2]["sensor_stats"]
    row = sensors[(sensors.machine_id == 1)].set_index("event_timestamp")
    assert normal["temperature_z"].iloc[0] == pytest.approx(
        row.loc[T0 + pd.Timedelta(hours=10), "temperature_z"]
    )
    assert known["temperature_z"].iloc[0] == pytest.approx(
        row.loc[T0 + pd.Timedelta(hours=9), "temperature_z"]
    )


@pytest.mark.parametrize(
    ("entities", "message"),
    [
        (pd.DataFrame({"machine_id": [], "event_timestamp": []}), "empty"),
        (pd.DataFrame({"machine_id": [1]}), "lacks column"),
        (pd.DataFrame({"event_timestamp": [T0]}), "lacks column"),
        (
            pd.DataFrame({"machine_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01")]}),
            "timezone-naive",
        ),
        (pd.DataFrame({"machine_id": [1], "event_timestamp": ["yesterday"]}), "not parseable"),
    ],
)
def test_bad_entity_frames_get_clear_errors(project, entities: pd.DataFrame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        build_frame(project[3], SERVICE, entities)


def test_iso_strings_with_zone_are_accepted(project) -> None:
    frame = build_frame(
        project[3],
        SERVICE,
        pd.DataFrame({"machine_id": [1], "event_timestamp": ["2026-01-02T05:00:00+02:00"]}),
    )
    assert frame["event_timestamp"].iloc[0] == pd.Timestamp("2026-01-02T03:00:00Z")


def test_unknown_service_lists_the_known_ones(project) -> None:
    with pytest.raises(FrameError, match=r"unknown feature service 'nope'.*failure_model_v1"):
        compile_plan(project[3], "nope")


def test_manifest_and_reproduce(project, tmp_path: Path) -> None:
    _root, params, _, store = project
    root = _root
    entities = label_rows(
        LabelSpec.from_params(params),
        Paths.from_params(params, root),
        ["machine_id"],
        start="2026-01-01T12:00:00Z",
        end="2026-01-02T12:00:00Z",
    )
    assert "failure_next_24h" in entities.columns and len(entities) == 6 * 24
    out = tmp_path / "frame.parquet"
    frame, manifest = write_training_frame(store, SERVICE, entities, out, params=params)
    on_disk = json.loads(manifest_path(out).read_text())
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    assert manifest["frame"]["rows"] == len(entities) == len(frame)
    assert len(manifest["frame"]["sha256"]) == 64 and len(manifest["definitions_fingerprint"]) == 64
    assert set(manifest["data"]) == {
        "data/features/sensor_stats.parquet",
        "data/features/machine_history.parquet",
        "data/features/machine_profile.parquet",
    }
    assert manifest["libraries"]["feast"] == "0.67.0"
    result = reproduce(store, manifest_path(out))
    assert result.match and result.actual_sha256 == manifest["frame"]["sha256"]
    # a changed frame is detected
    tampered = manifest | {"frame": manifest["frame"] | {"sha256": "0" * 64}}
    manifest_path(out).write_text(json.dumps(tampered, default=str))
    assert not reproduce(store, manifest_path(out)).match


def test_restated_history_triggers_a_full_refresh(project) -> None:
    root, params, tables, store = project
    materialize_incremental(store)
    sensors = tables["sensor_stats"]
    restated = sensors.assign(temperature_z=sensors["temperature_z"] + 1.0)
    path = root / params["paths"]["features"] / "sensor_stats.parquet"
    write_parquet(restated, path)
    try:
        result = {r.view: r for r in materialize_incremental(store)}
        assert result["sensor_stats"].full_refresh and not result["machine_history"].full_refresh
        online = store.get_online_features(
            features=["sensor_stats:temperature_z"], entity_rows=[{"machine_id": 2}]
        ).to_df()
        latest = restated[restated.machine_id == 2].sort_values("event_timestamp").iloc[-1]
        assert online["temperature_z"].iloc[0] == pytest.approx(latest["temperature_z"])
    finally:
        write_parquet(sensors, path)
        materialize_incremental(store)


def test_fast_writer_writes_exactly_what_feast_writes(project) -> None:
    import sqlite3

    from featureops.materialize import STATE_TABLE, _online_db_path

    _, _, _, store = project
    db = _online_db_path(store)

    def dump() -> dict[str, list[tuple]]:
        with sqlite3.connect(db) as con:
            tables = [
                r[0]
                for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'featureops_%'"
                    f" AND name != '{STATE_TABLE}'"
                )
            ]
            out = {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables}
            con.execute(f"DELETE FROM {STATE_TABLE}")
            for t in tables:
                con.execute(f'DELETE FROM "{t}"')
        return out

    dump()
    materialize_incremental(store, fast=False)
    feast_rows = dump()
    materialize_incremental(store, fast=True)
    fast_rows = dump()
    materialize_incremental(store)
    assert set(feast_rows) == set(fast_rows)
    assert sum(len(v) for v in feast_rows.values()) > 100
    for table, rows in feast_rows.items():
        assert rows == fast_rows[table], table
