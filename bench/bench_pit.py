"""Point-in-time engine vs one hand-written DuckDB ASOF LEFT JOIN vs pandas.merge_asof.

1M feature rows x 100k entity rows, 5 float features, one view, TTL 24 h, on the same
Parquet file. Runs are interleaved; prints best and median seconds, ratios to the
hand-written query, and whether every result equals it. Not part of the test suite:

    .venv/bin/python -m bench.bench_pit [--feature-rows N] [--entity-rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from featureops.io import write_parquet
from featureops.pit import FeatureViewSpec, point_in_time_join

FEATURES = [f"f{i}" for i in range(5)]
TTL = timedelta(hours=24)
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def make_data(root: Path, feature_rows: int, entity_rows: int, seed: int = 0):
    """~200 rows per entity over 200 h; one row per (entity, ts) so the baseline is exact."""
    rng = np.random.default_rng(seed)
    n_entities = max(feature_rows // 200, 10)
    feats = pd.DataFrame(
        {
            "machine_id": rng.integers(0, n_entities, feature_rows),
            "event_timestamp": T0
            + pd.to_timedelta(rng.integers(0, 200 * 3600, feature_rows), unit="s"),
        }
    ).drop_duplicates(["machine_id", "event_timestamp"], ignore_index=True)
    feats["created"] = feats["event_timestamp"] + pd.Timedelta(minutes=5)
    for f in FEATURES:
        feats[f] = rng.normal(size=len(feats))
    path = write_parquet(feats, root / "features.parquet")
    entities = pd.DataFrame(
        {
            "machine_id": rng.integers(0, n_entities, entity_rows),
            "event_timestamp": (
                T0 + pd.to_timedelta(rng.integers(0, 210 * 3600, entity_rows), unit="s")
            ).astype("datetime64[us, UTC]"),
        }
    )
    return path, entities


def engine(path: Path, entities: pd.DataFrame) -> pd.DataFrame:
    spec = FeatureViewSpec(
        "v", str(path), ["machine_id"], "event_timestamp", FEATURES, "created", TTL
    )
    return point_in_time_join(entities, [spec])


def duckdb_asof(path: Path, entities: pd.DataFrame) -> pd.DataFrame:
    """The practical limit: one hand-written ASOF LEFT JOIN (no tie-breaking)."""
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
    feats = pd.read_parquet(path, columns=["machine_id", "event_timestamp", *FEATURES])
    feats = feats.rename(columns={"event_timestamp": "ft"}).sort_values("ft")
    ents = entities.assign(__row=np.arange(len(entities))).sort_values("event_timestamp")
    out = pd.merge_asof(
        ents,
        feats,
        left_on="event_timestamp",
        right_on="ft",
        by="machine_id",
        direction="backward",
        tolerance=pd.Timedelta(TTL),
    )
    return out.sort_values("__row")[["machine_id", "event_timestamp", *FEATURES]].reset_index(
        drop=True
    )


def equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Same row count, same keys in the same order, same feature values (NaN == NaN)."""
    if len(a) != len(b) or not (a["machine_id"].to_numpy() == b["machine_id"].to_numpy()).all():
        return False
    return all(
        np.array_equal(a[f].to_numpy(dtype=float), b[f].to_numpy(dtype=float), equal_nan=True)
        for f in FEATURES
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature-rows", type=int, default=1_000_000)
    parser.add_argument("--entity-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="featureops-bench-pit-") as tmp:
        path, entities = make_data(Path(tmp), args.feature_rows, args.entity_rows)
        methods: dict[str, Callable[[Path, pd.DataFrame], pd.DataFrame]] = {
            "duckdb_asof_handwritten": duckdb_asof,
            "featureops_pit": engine,
            "pandas_merge_asof": pandas_merge_asof,
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        outputs: dict[str, pd.DataFrame] = {}
        for fn in methods.values():  # warm-up (imports, file cache)
            fn(path, entities)
        for _ in range(args.repeats):
            for name, fn in methods.items():
                gc.collect()
                start = time.perf_counter()
                outputs[name] = fn(path, entities)
                times[name].append(time.perf_counter() - start)
        base_best = min(times["duckdb_asof_handwritten"])
        base_median = statistics.median(times["duckdb_asof_handwritten"])
        print(
            f"{args.feature_rows:,} feature rows x {args.entity_rows:,} entity rows, "
            f"{len(FEATURES)} features, TTL {TTL}, {args.repeats} interleaved runs"
        )
        print(
            f"{'method':<26}{'best s':>9}{'median s':>10}{'ratio best':>12}{'ratio med':>11}  equal"
        )
        for name, ts in times.items():
            best, median = min(ts), statistics.median(ts)
            same = equal(outputs[name], outputs["duckdb_asof_handwritten"])
            print(
                f"{name:<26}{best:>9.3f}{median:>10.3f}{best / base_best:>12.2f}"
                f"{median / base_median:>11.2f}  {same}"
            )


if __name__ == "__main__":
    main()
