"""Training-frame retrieval: featureops' PIT engine vs baselines, on the same Parquet.

Baselines, measured in the same run: one hand-written DuckDB ``ASOF LEFT JOIN`` (the
practical limit), ``pandas.merge_asof``, Feast's DuckDB offline store and (small sizes only)
Feast's file/dask offline store. Every result is checked against the hand-written query.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from featureops.io import write_parquet
from featureops.pit import FeatureViewSpec, point_in_time_join

FEATURES = [f"f{i}" for i in range(5)]
TTL = timedelta(hours=24)
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def make_data(
    root: Path, feature_rows: int, entity_rows: int, seed: int = 0
) -> tuple[Path, pd.DataFrame]:
    """Hourly-ish feature rows for feature_rows/200 entities; random entity timestamps."""
    rng = np.random.default_rng(seed)
    n_entities = max(feature_rows // 200, 10)
    feats = pd.DataFrame(
        {
            "machine_id": rng.integers(0, n_entities, feature_rows),
            "event_timestamp": T0
            + pd.to_timedelta(rng.integers(0, 200 * 3600, feature_rows), unit="s"),
        }
    )
    # one row per (entity, time): the hand-written baseline has no tie-breaking, so ties
    # would make "equal" meaningless (ties are covered by the randomized unit tests)
    feats = feats.drop_duplicates(["machine_id", "event_timestamp"]).reset_index(drop=True)
    feats["created"] = feats["event_timestamp"] + pd.Timedelta(minutes=5)
    for f in FEATURES:
        feats[f] = rng.normal(size=len(feats))
    path = root / f"features_{feature_rows}.parquet"
    write_parquet(feats, path)
    entities = pd.DataFrame(
        {
            "machine_id": rng.integers(0, n_entities, entity_rows),
            "event_timestamp": T0
            + pd.to_timedelta(rng.integers(0, 210 * 3600, entity_rows), unit="s"),
        }
    )
    entities["event_timestamp"] = entities["event_timestamp"].astype("datetime64[us, UTC]")
    return path, entities


def featureops_engine(path: Path, entities: pd.DataFrame) -> pd.DataFrame:
    spec = FeatureViewSpec(
        "v", str(path), ["machine_id"], "event_timestamp", FEATURES, "created", TTL
    )
    return point_in_time_join(entities, [spec])


def duckdb_asof(path: Path, entities: pd.DataFrame) -> pd.DataFrame:
    """The practical limit: one hand-written ASOF LEFT JOIN (no dedupe of ties)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entities", entities.assign(__row=np.arange(len(entities))))
    cols = ", ".join(
        f"CASE WHEN f.event_timestamp >= e.event_timestamp - INTERVAL 24 HOUR THEN f.{c} END AS {c}"
        for c in FEATURES
    )
    out = con.sql(
        f"""SELECT e.machine_id, e.event_timestamp, {cols}
            FROM entities e ASOF LEFT JOIN read_parquet('{path}') f
              ON e.machine_id = f.machine_id AND e.event_timestamp >= f.event_timestamp
            ORDER BY e.__row"""
    ).df()
    con.close()
    return out


def pandas_merge_asof(path: Path, entities: pd.DataFrame) -> pd.DataFrame:
    feats = pd.read_parquet(path).sort_values("event_timestamp")
    ents = entities.assign(__row=np.arange(len(entities))).sort_values("event_timestamp")
    out = pd.merge_asof(
        ents,
        feats.rename(columns={"event_timestamp": "ft"}),
        left_on="event_timestamp",
        right_on="ft",
        by="machine_id",
        direction="backward",
        tolerance=pd.Timedelta(TTL),
    )
    return out.sort_values("__row")[["machine_id", "event_timestamp", *FEATURES]].reset_index(
        drop=True
    )


FEAST_REPO = """
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64
machine = Entity(name="machine", join_keys=["machine_id"], value_type=ValueType.INT64)
src = FileSource(name="src", path="{path}", timestamp_field="event_timestamp",
                 created_timestamp_column="created")
view = FeatureView(name="v", entities=[machine], ttl=timedelta(hours=24),
                   schema=[Field(name=f, dtype=Float64) for f in {features}], source=src)
svc = FeatureService(name="svc", features=[view])
"""


def feast_store(root: Path, path: Path, offline: str):
    """A throw-away Feast repo over the same Parquet with the given offline store."""
    from feast import FeatureStore

    repo = root / f"feast_{offline}"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text(
        f"project: bench\nprovider: local\nregistry: data/registry.db\n"
        f"offline_store:\n  type: {offline}\nonline_store:\n  type: sqlite\n  path: data/online.db\n"
        "entity_key_serialization_version: 3\n"
    )
    (repo / "defs.py").write_text(FEAST_REPO.format(path=path, features=FEATURES))
    subprocess.run(
        [str(Path(sys.executable).parent / "feast"), "apply", "--no-progress"],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    return FeatureStore(repo_path=str(repo))


def feast_retrieval(store, entities: pd.DataFrame) -> pd.DataFrame:
    out = store.get_historical_features(
        entity_df=entities, features=store.get_feature_service("svc")
    ).to_df()
    return out


def _timed(fn, *args) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def compare(result: pd.DataFrame, reference: pd.DataFrame) -> dict[str, Any]:
    """Row count and per-value agreement with the hand-written query (order-insensitive)."""
    key = ["machine_id", "event_timestamp"]
    a = result.sort_values(key, kind="stable").reset_index(drop=True)
    b = reference.sort_values(key, kind="stable").reset_index(drop=True)
    if len(a) != len(b):
        return {"rows": len(result), "equal": False}
    equal = all(
        np.allclose(a[f].to_numpy(dtype=float), b[f].to_numpy(dtype=float), equal_nan=True)
        for f in FEATURES
    )
    return {"rows": len(result), "equal": bool(equal)}


def run(
    sizes: list[tuple[int, int]], feast_up_to: int, dask_up_to: int, repeats: int = 3
) -> list[dict[str, Any]]:
    """Best of ``repeats`` per method and size; ratios to the hand-written DuckDB query."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="featureops-bench-") as tmp:
        root = Path(tmp)
        for feature_rows, entity_rows in sizes:
            path, entities = make_data(root, feature_rows, entity_rows)
            methods: dict[str, Any] = {
                "duckdb_asof_handwritten": partial(duckdb_asof, path, entities),
                "featureops_pit": partial(featureops_engine, path, entities),
                "pandas_merge_asof": partial(pandas_merge_asof, path, entities),
            }
            if feature_rows <= feast_up_to:
                store = feast_store(root, path, "duckdb")
                methods["feast_duckdb_offline"] = partial(feast_retrieval, store, entities)
            if feature_rows <= dask_up_to:
                store_dask = feast_store(root, path, "file")
                methods["feast_file_dask_offline"] = partial(feast_retrieval, store_dask, entities)
            results: dict[str, tuple[float, pd.DataFrame]] = {}
            for name, fn in methods.items():
                times = []
                for _ in range(repeats if name != "feast_file_dask_offline" else 1):
                    seconds, out = _timed(fn)
                    times.append(seconds)
                results[name] = (min(times), out)
                print(
                    f"  {feature_rows:>10,} x {entity_rows:>9,}  {name:<26} {min(times):8.2f} s",
                    flush=True,
                )
            base_time, base_out = results["duckdb_asof_handwritten"]
            for name, (seconds, out) in results.items():
                rows.append(
                    {
                        "feature_rows": feature_rows,
                        "entity_rows": entity_rows,
                        "method": name,
                        "seconds": round(seconds, 3),
                        "ratio_vs_duckdb_asof": round(seconds / base_time, 2),
                        **compare(out, base_out),
                    }
                )
    return rows
