"""Training frame on Spark local[2] vs DuckDB, same Parquet, same run (reported, not gated).

``python -m bench.spark_frames_bench --entities 1000000 --rows 10000000`` (defaults are
smaller; ``--quick`` is a smoke size). Both engines run featureops' point-in-time join with
the same view specs (5 float features, TTL 24 h), as recorded and as known at; the Spark
frame is checked equal to DuckDB's. Prints JSON. Spark start-up is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from featureops.io import write_parquet
from featureops.pit import FeatureViewSpec, point_in_time_join

FEATURES = [f"f{i}" for i in range(5)]
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def make_data(root: Path, rows: int, entities: int, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """``rows`` feature rows over rows/200 keys (about 200 h of history); random entity rows."""
    rng = np.random.default_rng(seed)
    keys = max(rows // 200, 10)
    ts = T0 + pd.to_timedelta(rng.integers(0, 200 * 3600, rows), unit="s")
    feats = pd.DataFrame({"machine_id": rng.integers(0, keys, rows), "event_timestamp": ts})
    feats["created"] = feats["event_timestamp"] + pd.to_timedelta(
        rng.integers(0, 3 * 3600, rows), unit="s"
    )
    for f in FEATURES:
        feats[f] = rng.normal(size=rows)
    path = write_parquet(feats, root / "features.parquet")
    ents = pd.DataFrame(
        {
            "machine_id": rng.integers(0, keys, entities),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(0, 210 * 3600, entities), "s"),
        }
    )
    return path, ents


def run(entities: int, rows: int, master: str = "local[2]") -> dict[str, Any]:
    from featureops.store import offline_spark

    out: dict[str, Any] = {"entities": entities, "feature_rows": rows, "spark_master": master}
    with tempfile.TemporaryDirectory(prefix="featureops-spark-bench-") as tmp:
        started = time.perf_counter()
        path, ents = make_data(Path(tmp), rows, entities)
        out["generate_s"] = round(time.perf_counter() - started, 2)
        spec = FeatureViewSpec(
            "v", str(path), ["machine_id"], "event_timestamp", FEATURES, "created",
            ttl=timedelta(hours=24),
        )  # fmt: skip
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        started = time.perf_counter()
        spark = offline_spark.spark_session(
            {"spark.master": master, "spark.sql.shuffle.partitions": "8", "spark.ui.showConsoleProgress": "false",
             "spark.driver.memory": "6g"}
        )  # fmt: skip
        spark.sparkContext.setLogLevel("ERROR")
        out["spark_start_s"] = round(time.perf_counter() - started, 2)
        for known in (False, True):
            mode = "as_known_at" if known else "as_recorded"
            started = time.perf_counter()
            duck = point_in_time_join(ents, [spec], as_known_at=known, output="arrow")
            duck_s = time.perf_counter() - started
            started = time.perf_counter()
            ours = offline_spark.point_in_time_join(
                spark, ents, [spec], as_known_at=known, output="arrow"
            )
            spark_s = time.perf_counter() - started
            assert isinstance(duck, pa.Table) and isinstance(ours, pa.Table)
            out[mode] = {
                "duckdb_s": round(duck_s, 2),
                "spark_s": round(spark_s, 2),
                "spark_over_duckdb": round(spark_s / duck_s, 1),
                "equal": ours.equals(duck),
                "matched_rows": duck.num_rows - duck.column("f0").null_count,
            }
        spark.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--quick", action="store_true", help="10k entity rows x 100k rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.entities, args.rows = 10_000, 100_000
    print(json.dumps(run(args.entities, args.rows, args.master), indent=2))


if __name__ == "__main__":
    main()
