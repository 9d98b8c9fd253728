"""Online stores side by side: SQLite (our fast paths) vs Redis (Feast's public API).

On one throw-away bench repo (the serving bench's definitions: one INT64 key, 25 served
features over three views and a python-mode on-demand view), configured once per engine:

- materialize: featureops' ``materialize_incremental`` from scratch (every entity's latest
  row of every view), then an incremental run with one new hour of rows: seconds, source
  rows and entity-view rows written per second;
- online: featureops' reader (``ServiceReader.read``, what ``/predict`` uses) and Feast's
  ``get_online_features`` on the same service, 1 and 100 entities: p50 / p99 latency.

Redis is a ``redis-server`` started here on a free port (no persistence) and stopped at the
end. Reported, not gated: a shared machine moves these figures.

    python -m bench.online_store_bench [--entities 1000] [--hours 24] [--repeats 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.serving_bench import (
    BENCH_REPO,
    SENSOR_EXTRA,
    SERVICE,
    STORE_YAML,
    TREND_INPUTS,
    _percentiles,
    make_tables,
)
from featureops.io import write_parquet

T0 = pd.Timestamp("2026-01-01", tz="UTC")
SQLITE_BLOCK = "online_store:\n  type: sqlite\n  path: data/online_store.db\n"


def make_repo(root: Path, tables: dict[str, pd.DataFrame], online_store: str | None) -> Any:
    """Write and apply the bench repo with the given ``online_store:`` block (None: SQLite)."""
    from feast import FeatureStore

    repo = root / "feature_repo"
    (repo / "tables").mkdir(parents=True)
    for name, df in tables.items():
        write_parquet(df, repo / "tables" / f"{name}.parquet")
    config = STORE_YAML if online_store is None else STORE_YAML.replace(SQLITE_BLOCK, online_store)
    (repo / "feature_store.yaml").write_text(config)
    (repo / "definitions.py").write_text(
        BENCH_REPO.format(sensor=SENSOR_EXTRA, trends=TREND_INPUTS)
    )
    spec = importlib.util.spec_from_file_location(
        f"online_bench_{root.name}", repo / "definitions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store = FeatureStore(repo_path=str(repo))
    store.apply(module.OBJECTS)
    return store


def timed_materialize(store: Any) -> dict[str, Any]:
    from featureops.materialize import materialize_incremental

    start = time.perf_counter()
    results = materialize_incremental(store)
    seconds = time.perf_counter() - start
    rows = sum(r.rows_scanned for r in results)
    written = sum(r.entities_written for r in results)
    return {
        "seconds": round(seconds, 3),
        "source_rows": rows,
        "rows_written": written,  # latest rows (entity x view) upserted
        "source_rows_per_s": round(rows / seconds) if seconds else None,
        "rows_written_per_s": round(written / seconds) if seconds else None,
        "full_refresh": all(r.full_refresh for r in results),
    }


def add_hour(store: Any, tables: dict[str, pd.DataFrame]) -> None:
    """One more hour of sensor and history rows for every entity (an incremental run)."""
    repo = Path(store.repo_path)
    for name in ("sensor_stats", "machine_history"):
        df = tables[name]
        last = df[df.event_timestamp == df.event_timestamp.max()].copy()
        last["event_timestamp"] += pd.Timedelta(hours=1)
        last["created"] += pd.Timedelta(hours=1)
        write_parquet(pd.concat([df, last]), repo / "tables" / f"{name}.parquet")


def online_latency(store: Any, n_entities: int, repeats: int) -> list[dict[str, Any]]:
    from featureops.online import build_reader

    reader = build_reader(store, SERVICE)
    con = reader.connect()
    service = store.get_feature_service(SERVICE)
    out = []
    for n in (1, 100):
        ids = [1 + (i * 7919) % n_entities for i in range(n)]
        calls = {
            "featureops reader": lambda ids=ids: reader.read(con, {"machine_id": ids}),
            "get_online_features": lambda ids=ids: store.get_online_features(
                features=service, entity_rows={"machine_id": ids}
            ).to_dict(),
        }
        for what, call in calls.items():
            call()
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                samples.append(time.perf_counter() - start)
            out.append({"what": what, "entities": n, **_percentiles(samples)})
    return out


# ---------------------------------------------------------------------------------------
# A local redis-server.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if redis.Redis(host="127.0.0.1", port=port).ping():
                return proc, port
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def run(n_entities: int = 1000, hours: int = 24, repeats: int = 300) -> dict[str, Any]:
    tables = make_tables(n_entities, hours)
    results: dict[str, Any] = {"entities": n_entities, "hours": hours, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="featureops-online-stores-") as tmp:
        root = Path(tmp)
        proc, port = start_redis(root)
        try:
            engines = {
                "sqlite": None,
                "redis": f'online_store:\n  type: redis\n  connection_string: "127.0.0.1:{port}"\n',
            }
            for engine, block in engines.items():
                print(f"{engine}:", file=sys.stderr, flush=True)
                store = make_repo(root / engine, tables, block)
                first = timed_materialize(store)
                add_hour(store, tables)
                incremental = timed_materialize(store)
                results[engine] = {
                    "materialize_full": first,
                    "materialize_incremental_1h": incremental,
                    "online": online_latency(store, n_entities, repeats),
                }
                print(f"  {json.dumps(results[engine])}", file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(10)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault("FEATUREOPS_PROGRESS", "0")
    print(json.dumps(run(args.entities, args.hours, args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
