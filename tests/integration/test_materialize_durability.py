"""Materialize: verified bookkeeping, full refreshes that delete, deterministic rows and digest.

Real Feast (registry applied with ``featureops.store.registry.apply_repo``, SQLite online
store: the fast path of :mod:`featureops.store.online.sqlite`) on small synthetic feature
tables. The same behaviour on Redis is in ``test_redis_online``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore

from featureops.frames import open_store
from featureops.io import write_parquet
from featureops.materialize import (
    STATE_TABLE,
    _online_db_path,
    latest_rows,
    materialize_incremental,
    online_table,
    rows_digest,
    view_columns,
)
from featureops.store.online.sqlite import close_connection
from featureops.store.registry import (
    ROOT_TAG,
    RegistryLocationError,
    apply_repo,
    check_registry_location,
)
from tests.feature_data import make_feast_project

pytestmark = pytest.mark.integration
N_MACHINES = 6


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("materialize")
    params, tables = make_feast_project(root, n_machines=N_MACHINES, hours=48)
    apply_repo(root / "feature_repo")
    store = open_store(root / "feature_repo")
    materialize_incremental(store)
    return root, params, tables, store


def _db(store) -> sqlite3.Connection:
    return sqlite3.connect(_online_db_path(store))


def _machines_online(store, view: str) -> set[int]:
    from feast.infra.key_encoding_utils import deserialize_entity_key

    table = online_table(store, store.get_feature_view(view))
    con = _db(store)
    try:
        keys = [r[0] for r in con.execute(f'SELECT DISTINCT entity_key FROM "{table}"')]
    finally:
        con.close()
    version = store.config.entity_key_serialization_version
    return {
        deserialize_entity_key(k, entity_key_serialization_version=version)
        .entity_values[0]
        .int64_val
        for k in keys
    }


def _features_online(store, view: str) -> set[str]:
    table = online_table(store, store.get_feature_view(view))
    con = _db(store)
    try:
        return {r[0] for r in con.execute(f'SELECT DISTINCT feature_name FROM "{table}"')}
    finally:
        con.close()


def test_the_registry_records_no_folder_and_no_table_locations(project) -> None:
    root, _, _, store = project
    from feast.protos.feast.core.Registry_pb2 import Registry

    data = (root / "data" / "feast" / "registry.db").read_bytes()
    registry = Registry()
    registry.ParseFromString(data)
    assert not registry.infra.infra_objects  # nothing another folder's apply could drop
    assert str(root).encode() not in data  # the same bytes in any clone or copy
    uris = [s.file_options.uri for s in registry.data_sources]
    assert uris and all(uri.startswith("data/features/") for uri in uris), uris
    assert ROOT_TAG not in registry.projects[0].spec.tags
    check_registry_location(store)
    again = apply_repo(root / "feature_repo")
    assert not again.changed  # same definitions, same bytes


def test_a_registry_of_an_earlier_version_built_elsewhere_is_refused(project) -> None:
    """Registries from before relative source paths record their folder: refused elsewhere."""
    root, _, _, _ = project
    from feast.protos.feast.core.Registry_pb2 import Registry

    path = root / "data" / "feast" / "registry.db"
    data = path.read_bytes()
    old = Registry()
    old.ParseFromString(data)
    old.projects[0].spec.tags[ROOT_TAG] = "/somewhere/else"
    try:
        path.write_bytes(old.SerializeToString())
        with pytest.raises(RegistryLocationError, match="dvc repro -f -s feast_apply"):
            check_registry_location(FeatureStore(repo_path=str(root / "feature_repo")))
    finally:
        path.write_bytes(data)


@pytest.mark.parametrize("damage", ["drop table", "delete rows", "delete store file"])
def test_missing_online_rows_are_re_materialized(project, damage: str) -> None:
    _, _, _, store = project
    view = store.get_feature_view("sensor_stats")
    table = online_table(store, view)
    db = _online_db_path(store)
    if damage == "delete store file":
        close_connection(store)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    else:
        con = sqlite3.connect(db)
        with con:
            if damage == "drop table":
                con.execute(f'DROP TABLE "{table}"')
            else:
                con.execute(f'DELETE FROM "{table}" WHERE rowid % 3 = 0')
        con.close()
    results = {r.view: r for r in materialize_incremental(store)}
    assert results["sensor_stats"].full_refresh
    assert results["sensor_stats"].online_entities == N_MACHINES
    assert _machines_online(store, "sensor_stats") == set(range(1, N_MACHINES + 1))
    again = {r.view: r for r in materialize_incremental(store)}
    assert not any(r.full_refresh for r in again.values())  # verified: nothing to redo


def test_a_full_refresh_removes_entities_and_features_the_source_no_longer_has(project) -> None:
    root, params, tables, store = project
    path = root / params["paths"]["features"] / "sensor_stats.parquet"
    sensors = tables["sensor_stats"]
    view = store.get_feature_view("sensor_stats")
    table = online_table(store, view)
    con = sqlite3.connect(_online_db_path(store))
    with con:  # a feature that was dropped from the view still has rows online
        con.execute(
            f'INSERT INTO "{table}" (entity_key, feature_name, value, value_text, event_ts, '
            f"created_ts) SELECT entity_key, 'retired_feature', value, value_text, event_ts, "
            f"created_ts FROM \"{table}\" WHERE feature_name = 'temperature_z'"
        )
    con.close()
    write_parquet(sensors[sensors.machine_id != 3], path)  # machine 3 was deleted upstream
    try:
        result = {r.view: r for r in materialize_incremental(store)}["sensor_stats"]
        assert result.full_refresh
        assert _machines_online(store, "sensor_stats") == set(range(1, N_MACHINES + 1)) - {3}
        assert "retired_feature" not in _features_online(store, "sensor_stats")
        online = store.get_online_features(
            features=["sensor_stats:temperature_z"], entity_rows=[{"machine_id": 3}]
        ).to_dict()
        assert online["temperature_z"] == [None]
    finally:
        write_parquet(sensors, path)
        materialize_incremental(store)
    assert _machines_online(store, "sensor_stats") == set(range(1, N_MACHINES + 1))


def test_tie_breaks_are_deterministic(project, tmp_path: Path) -> None:
    _, _, tables, store = project
    view = store.get_feature_view("machine_history")
    rows = tables["machine_history"]
    last = rows[rows.event_timestamp == rows.event_timestamp.max()]
    # exact duplicates of (machine, event time, created) with different values
    twins = pd.concat([last.assign(hours_since_maintenance=v) for v in (500.0, 700.0, 600.0)])
    end = datetime(2030, 1, 1, tzinfo=UTC)
    picked = []
    for seed in range(3):
        path = tmp_path / f"history_{seed}.parquet"
        write_parquet(pd.concat([rows, twins]).sample(frac=1, random_state=seed), path)
        table, _ = latest_rows(path, view, None, end)
        picked.append(table.to_pandas())
    assert (picked[0]["hours_since_maintenance"] == 700.0).all()  # the larger value wins
    for other in picked[1:]:
        pd.testing.assert_frame_equal(picked[0], other)


M64 = 2**64


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) % M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) % M64
    return x ^ (x >> 31)


def _reference_digest(df: pd.DataFrame, columns: list[str]) -> str:
    """The digest's definition, in plain Python: no DuckDB, numpy or Arrow hashing."""

    def word(v) -> int:
        if v is None or v is pd.NaT:
            return 0x6E756C6C6E756C6C
        if isinstance(v, pd.Timestamp):
            return (v.value // 1000) % M64
        if isinstance(v, str):
            return int.from_bytes(hashlib.md5(v.encode()).digest()[:8], "little")
        if isinstance(v, float):
            return int.from_bytes(struct.pack("<d", v), "little")
        return int(v) % M64

    first = second = 0
    for row in df[columns].itertuples(index=False):
        h = 0xD6E8FEB86659FD93
        for i, v in enumerate(row):
            h = _mix(h ^ _mix((word(v) + (i + 1) * 0x9E3779B97F4A7C15) % M64))
        first = (first + h) % M64
        second = (second + _mix(h ^ 0xD6E8FEB86659FD93)) % M64
    return f"v2:{len(df)}:{first:016x}{second:016x}"


@pytest.mark.parametrize("view_name", ["machine_profile", "machine_history"])
def test_rows_digest_is_a_defined_function_of_the_rows(
    project, tmp_path: Path, view_name: str
) -> None:
    _, _, tables, store = project
    view = store.get_feature_view(view_name)
    df = tables[view_name].copy()
    feature = view.features[0].name
    df[feature] = df[feature].astype(object)
    df.loc[df.index[0], feature] = None  # a null value
    end = datetime(2030, 1, 1, tzinfo=UTC)
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(df, a)
    write_parquet(df.iloc[::-1], b)  # other row order, other file bytes
    digest = rows_digest(a, view, end)
    assert digest == rows_digest(b, view, end)
    expected = pd.read_parquet(a).astype(object).where(pd.read_parquet(a).notna(), None)
    assert digest == _reference_digest(expected, view_columns(view))
    changed = df.copy()
    changed.loc[changed.index[1], feature] = df[feature].iloc[2]
    write_parquet(changed, b)
    assert rows_digest(b, view, end) != digest


def test_views_removed_from_the_registry_lose_their_table_and_bookkeeping(project) -> None:
    _, _, _, store = project
    con = _db(store)
    with con:
        con.execute(
            'CREATE TABLE "featureops_retired_view" (entity_key BLOB, feature_name TEXT, '
            "value BLOB, value_text TEXT, vector_value BLOB, event_ts timestamp, "
            "created_ts timestamp, PRIMARY KEY(entity_key, feature_name))"
        )
        con.execute(
            f"INSERT INTO {STATE_TABLE} (view, fingerprint, end_ts, digest) "
            "VALUES ('retired_view', 'x', '2026-01-01T00:00:00+00:00', 'x')"
        )
    con.close()
    materialize_incremental(store)
    con = _db(store)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        views = {r[0] for r in con.execute(f"SELECT view FROM {STATE_TABLE}")}
    finally:
        con.close()
    assert "featureops_retired_view" not in tables and "retired_view" not in views
    assert STATE_TABLE in tables and "featureops_sensor_stats" in tables
