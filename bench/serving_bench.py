"""Materialization throughput and online latency.

- materialize: featureops' incremental materialize (latest row per entity in DuckDB, then
  its direct SQLite writer) vs a direct bulk ``executemany`` of the same latest rows into
  SQLite (the floor), vs the same rows through Feast's proto conversion and
  ``online_write_batch``, vs Feast's stock ``FeatureStore.materialize``;
- online: ``get_online_features`` p50/p99 for 1 and 100 entities on the demo store;
- service: ``POST /predict`` p50/p99 for 1 and 100 ids, and requests/s from a bounded
  load generator (N client threads, loopback) against ``featureops serve``.
"""

from __future__ import annotations

import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.retrieval import FEATURES, T0, feast_store
from featureops.io import write_parquet


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "n": len(ms),
    }


def materialization(entity_counts: list[int], rows_per_entity: int = 5) -> list[dict[str, Any]]:
    from featureops.materialize import latest_rows

    out = []
    for n in entity_counts:
        with tempfile.TemporaryDirectory(prefix="featureops-mat-") as tmp:
            root = Path(tmp)
            rng = np.random.default_rng(0)
            rows = n * rows_per_entity
            df = pd.DataFrame(
                {
                    "machine_id": np.repeat(np.arange(n), rows_per_entity),
                    "event_timestamp": T0
                    + pd.to_timedelta(np.tile(np.arange(rows_per_entity), n), unit="h"),
                }
            )
            df["created"] = df["event_timestamp"]
            for f in FEATURES:
                df[f] = rng.normal(size=rows)
            path = root / "features.parquet"
            write_parquet(df, path)
            store = feast_store(root, path, "duckdb")
            ours = _timed_materialize(store, fast=True)
            feast_path = _timed_materialize(feast_store(root / "proto", path, "duckdb"), fast=False)
            stock_store = feast_store(root / "stock", path, "duckdb")
            start = time.perf_counter()
            stock_store.materialize(T0 - pd.Timedelta(days=1), df["event_timestamp"].max())
            stock = time.perf_counter() - start

            view = store.get_feature_view("v")
            start = time.perf_counter()
            table, _ = latest_rows(path, view, None, df["event_timestamp"].max())
            con = sqlite3.connect(root / "bulk.db")
            con.execute(
                "CREATE TABLE t (machine_id INTEGER PRIMARY KEY, ts TEXT, "
                + ", ".join(f"{f} REAL" for f in FEATURES)
                + ")"
            )
            latest = table.to_pandas()
            with con:
                con.executemany(
                    f"INSERT OR REPLACE INTO t VALUES (?, ?, {', '.join('?' * len(FEATURES))})",
                    zip(
                        latest["machine_id"].tolist(),
                        latest["event_timestamp"].astype(str).tolist(),
                        *(latest[f].tolist() for f in FEATURES),
                        strict=True,
                    ),
                )
            con.close()
            bulk = time.perf_counter() - start
            out.append(
                {
                    "entities": n,
                    "rows_scanned": rows,
                    "featureops_materialize_s": round(ours, 3),
                    "direct_bulk_insert_s": round(bulk, 3),
                    "ratio": round(ours / bulk, 2),
                    "entities_per_s": round(n / ours),
                    "feast_proto_write_s": round(feast_path, 3),
                    "feast_stock_materialize_s": round(stock, 3),
                    "stock_vs_featureops": round(stock / ours, 2),
                }
            )
            print(
                f"  materialize {n:>8,} entities: {ours:.2f} s vs bulk {bulk:.2f} s, "
                f"Feast proto path {feast_path:.2f} s, stock Feast {stock:.2f} s",
                flush=True,
            )
    return out


def _timed_materialize(store, fast: bool) -> float:
    """Seconds for featureops' incremental materialize (``fast``: its direct SQLite writer)."""
    from featureops.materialize import materialize_incremental

    start = time.perf_counter()
    materialize_incremental(store, fast=fast)
    return time.perf_counter() - start


def online_latency(repo: str, repeats: int = 200) -> list[dict[str, Any]]:
    """In-process get_online_features on the demo store (feature service of the model)."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    service = store.get_feature_service("failure_model_v1")
    ids = [int(i) for i in range(1, 41)]
    out = []
    for n in (1, 100):
        rows = [{"machine_id": ids[i % len(ids)]} for i in range(n)]
        store.get_online_features(features=service, entity_rows=rows)  # warm-up
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            store.get_online_features(features=service, entity_rows=rows).to_dict()
            samples.append(time.perf_counter() - start)
        out.append({"what": "get_online_features", "entities": n, **_percentiles(samples)})
        print(f"  get_online_features x{n}: {out[-1]}", flush=True)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_params(params: str, tmp: Path) -> Path:
    """A params file like ``params`` with a throw-away registry and feature log.

    The train stage's candidate is registered and promoted there, so the benchmark serves
    the demo model without touching the user's registry or served-feature log.
    """
    import yaml

    from featureops.config import load_params

    values = load_params(params)
    values["paths"]["registry"] = str(tmp / "registry")
    values["paths"]["feature_log"] = str(tmp / "feature_log")
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    featureops = str(Path(sys.executable).parent / "featureops")
    subprocess.run(
        [featureops, "model", "register", "--promote", "--params", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def service(
    params: str = "params.yaml", clients: int = 4, seconds: float = 10.0
) -> list[dict[str, Any]]:
    """Start `featureops serve`, measure /predict latency and requests/s on loopback."""
    with tempfile.TemporaryDirectory(prefix="featureops-serve-") as tmp:
        return _measure_service(_bench_params(params, Path(tmp)), clients, seconds)


def _measure_service(params: Path, clients: int, seconds: float) -> list[dict[str, Any]]:
    port = _free_port()
    log_path = params.parent / "serve.log"
    with log_path.open("w") as log:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "featureops"),
                "serve",
                "--port",
                str(port),
                "--params",
                str(params),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    out: list[dict[str, Any]] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if proc.poll() is not None:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"featureops serve exited:\n{tail}") from None
                time.sleep(0.5)
        with httpx.Client(timeout=10) as client:
            for n in (1, 100):
                body = {"machine_ids": [1 + i % 40 for i in range(n)]}
                client.post(f"{url}/predict", json=body)
                samples = []
                for _ in range(100):
                    start = time.perf_counter()
                    assert client.post(f"{url}/predict", json=body).status_code == 200
                    samples.append(time.perf_counter() - start)
                out.append({"what": "POST /predict", "entities": n, **_percentiles(samples)})
                print(f"  /predict x{n}: {out[-1]}", flush=True)
        counts = [0] * clients
        stop = time.time() + seconds

        def load(i: int) -> None:
            with httpx.Client(timeout=10) as c:
                while time.time() < stop:
                    if c.post(f"{url}/predict", json={"machine_ids": [1 + i]}).status_code == 200:
                        counts[i] += 1

        threads = [threading.Thread(target=load, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.append(
            {
                "what": f"requests/s, {clients} client threads, 1 id each",
                "requests_per_s": round(sum(counts) / seconds, 1),
            }
        )
        print(f"  throughput: {out[-1]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out
