"""Feast configured with Spark (offline store + compute engine): frames and materialization.

Two throw-away projects read the same feature Parquet: the default one (DuckDB offline,
SQLite online) and one whose feature_store.yaml says Spark (``offline_store: spark``,
``batch_engine: spark.engine``). Definitions are the repository's own feature_repo/, unchanged:
``FeatureTables.source`` gives SparkSources when the repo is configured for Spark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from featureops.conventions import resolve_source_path
from featureops.frames import build_frame, offline_engine, open_store
from featureops.materialize import data_end, latest_rows, materialize_incremental, source_path
from featureops.store.batch_spark import batch_engine_type, latest_rows_spark, uses_spark
from tests.conftest import write_params
from tests.feature_data import make_feast_project
from tests.spark.conftest import SPARK_CONF

pytestmark = pytest.mark.spark
SERVICE = "failure_model_v1"
BIN = Path(sys.executable).parent
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def spark_store_yaml() -> dict:
    """The Spark configuration of feature_store.yaml (the README's "Scaling out" snippet)."""
    return {
        "project": "featureops",
        "provider": "local",
        "registry": {"path": "../data/feast/registry.db", "cache_ttl_seconds": 60},
        "offline_store": {"type": "spark", "spark_conf": SPARK_CONF},
        "batch_engine": {"type": "spark.engine", "partitions": 2, "spark_conf": SPARK_CONF},
        "online_store": {"type": "sqlite", "path": "../data/feast/online_store.db"},
        "entity_key_serialization_version": 3,
        "auth": {"type": "no_auth"},
    }


def feast_apply(*roots: Path) -> None:
    """`feast apply` in each project, concurrently (each pays Feast's import time)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    procs = [
        subprocess.Popen(
            [str(BIN / "feast"), "-c", "feature_repo", "apply", "--no-progress"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for root in roots
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, spark):
    """(default store, Spark store) over the same feature Parquet."""
    default_root = tmp_path_factory.mktemp("default")
    params, _ = make_feast_project(default_root, n_machines=4, hours=60)
    spark_root = tmp_path_factory.mktemp("spark")
    make_feast_project(spark_root, n_machines=1, hours=1)  # repo copy; its data is not read
    shared = dict(params, paths={**params["paths"]})
    shared["paths"]["features"] = str(default_root / params["paths"]["features"])
    write_params(spark_root, shared)
    config = spark_root / params["feast"]["repo"] / "feature_store.yaml"
    config.write_text(yaml.safe_dump(spark_store_yaml(), sort_keys=False))
    feast_apply(default_root, spark_root)
    default = open_store(default_root / params["feast"]["repo"])
    on_spark = open_store(spark_root / params["feast"]["repo"])
    return default, on_spark


def entities(n: int = 120, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "machine_id": rng.integers(1, 7, n),  # 5 and 6 have no data
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(-60, 64 * 60, n), unit="min"),
        }
    )
    return pd.concat([frame, frame.iloc[:3]], ignore_index=True)  # duplicates kept


def test_spark_repo_uses_spark_sources_and_the_spark_adapter(stores) -> None:
    default, on_spark = stores
    assert offline_engine(default) == "duckdb" and offline_engine(on_spark) == "spark"
    source = on_spark.get_feature_view("sensor_stats").batch_source
    assert type(source).__name__ == "SparkSource"
    default_path = default.get_feature_view("sensor_stats").batch_source.path
    assert not Path(default_path).is_absolute()  # relative to the project folder
    assert Path(source.path) == resolve_source_path(default.repo_path, default_path)


@pytest.mark.parametrize("as_known_at", [True, False])
def test_frames_on_spark_equal_duckdb(stores, as_known_at: bool) -> None:
    default, on_spark = stores
    ents = entities()
    ours = build_frame(on_spark, SERVICE, ents, as_known_at=as_known_at)
    duck = build_frame(default, SERVICE, ents, as_known_at=as_known_at)
    pd.testing.assert_frame_equal(ours, duck, check_exact=True)
    assert duck.drop(columns=list(ents.columns)).notna().any().all()  # not trivially null


def test_feasts_own_spark_offline_store_agrees(stores) -> None:
    """The stock path (Feast's Spark offline store) gives the same values, as known at."""
    default, on_spark = stores
    ents = entities(60, seed=9)
    stock = build_frame(on_spark, SERVICE, ents, as_known_at=True, engine="feast")
    duck = build_frame(default, SERVICE, ents, as_known_at=True)
    assert list(stock.columns) == list(duck.columns)
    assert stock["machine_id"].tolist() == duck["machine_id"].tolist()
    for col in duck.columns[2:]:
        a, b = stock[col], duck[col]
        if a.dtype == object or b.dtype == object:
            assert a.fillna("<na>").tolist() == b.fillna("<na>").tolist(), col
        else:
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, err_msg=col)


def test_spark_compute_engine_materializes_what_the_default_path_does(stores) -> None:
    default, on_spark = stores
    results = materialize_incremental(default)
    end = max(r.end for r in results)
    on_spark.materialize(start_date=(T0 - pd.Timedelta(days=400)).to_pydatetime(), end_date=end)
    rows = [{"machine_id": m} for m in range(1, 7)]
    service = default.get_feature_service(SERVICE)
    want = default.get_online_features(features=service, entity_rows=rows).to_df()
    got = on_spark.get_online_features(
        features=on_spark.get_feature_service(SERVICE), entity_rows=rows
    ).to_df()
    assert list(got.columns) == list(want.columns)
    assert want.drop(columns=["machine_id"]).iloc[:4].notna().all().all()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_the_materialize_stage_reads_latest_rows_on_the_spark_engine(stores) -> None:
    """``batch_engine: spark.engine``: the stage's latest-row query runs on Spark, same rows."""
    default, on_spark = stores
    assert batch_engine_type(default) == "local" and uses_spark(on_spark)
    for view in on_spark.list_feature_views():
        path = source_path(on_spark, view)
        end = data_end(on_spark, [view])
        for start in (None, end - timedelta(hours=5), end - timedelta(days=2)):
            spark_rows, spark_scanned = latest_rows_spark(on_spark, path, view, start, end)
            duck_rows, duck_scanned = latest_rows(path, view, start, end)
            assert spark_scanned == duck_scanned > 0, (view.name, start)
            assert spark_rows.num_rows > 0 and spark_rows.equals(duck_rows), (view.name, start)

    results = materialize_incremental(on_spark)  # the stage's function, on the Spark config
    assert results and all(r.full_refresh and r.entities_written > 0 for r in results)
    materialize_incremental(default)
    rows = [{"machine_id": m} for m in range(1, 7)]
    want = default.get_online_features(
        features=default.get_feature_service(SERVICE), entity_rows=rows
    ).to_df()
    got = on_spark.get_online_features(
        features=on_spark.get_feature_service(SERVICE), entity_rows=rows
    ).to_df()
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
