"""Materialization throughput, online reads and the prediction service under load.

- materialize: featureops' incremental materialize (latest row per entity in DuckDB, then
  its direct SQLite writer) vs a direct bulk ``executemany`` of the same latest rows into
  SQLite (the floor), vs the same rows through Feast's proto conversion and
  ``online_write_batch``, vs Feast's stock ``FeatureStore.materialize``;
- online: in-process reads of a 25-feature service (python-mode on-demand view included):
  featureops' reader vs Feast's ``get_online_features``, 1 and 100 entities;
- service: ``POST /predict`` of the featureops service (2 workers) against ``feast serve``
  (2 workers, feature-only ``/get-online-features``) on the same service and store, both
  running, measured with ``wrk`` (C, so the client does not saturate a core itself):
  latency percentiles on one connection at 1 and 100 entities, and requests/s with
  several connections, plus the CPU time each server spent per request (from /proc: what
  a request costs whatever else runs on the machine); then the same while Feast's
  ``materialize`` rewrites the online store in a loop. Tests alternate between the two
  servers and repeat (``--rounds``, medians reported), so a change in background load
  hits both sides of a ratio alike. Every ratio compares figures of the same run.

The service benchmark builds its own throw-away project in a temp dir (demo-shaped: one
INT64 key, 25 features over three views and a python-mode on-demand view, 1,000 entities,
a registered scikit-learn pipeline), so it needs no pipeline run and touches nothing else.

    python -m bench.serving_bench [--seconds 5] [--rounds 3] [--entities 1000]
        [--connections 4,16] [--nice -10] [--json out.json]

needs ``wrk`` on PATH (Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.retrieval import FEATURES, T0, feast_store
from featureops.io import write_parquet

SERVICE = "bench_model_v1"
JSON = {"content-type": "application/json"}
BIN = Path(sys.executable).parent


def _percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "n": len(ms),
    }


# ---------------------------------------------------------------------------------------
# Materialization (unchanged): featureops' materialize vs the bulk floor and Feast's paths.


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


# ---------------------------------------------------------------------------------------
# The bench project: a demo-shaped Feast repo, materialized, with a registered model.

SENSOR_EXTRA = [f"s{i:02d}" for i in range(40)]  # 20 of them are served
TREND_INPUTS = [
    "vibration_mean_6h",
    "vibration_mean_24h",
    "temperature_mean_6h",
    "temperature_mean_24h",
]

BENCH_REPO = r'''
"""Bench repo: one INT64 key, 25 served features, a python-mode on-demand view."""
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, String

DATA = Path(__file__).resolve().parent / "tables"
SENSOR = {sensor!r}
TRENDS = {trends!r}


def _source(name):
    return FileSource(path=str(DATA / f"{{name}}.parquet"), timestamp_field="event_timestamp",
                      created_timestamp_column="created")


machine = Entity(name="machine", join_keys=["machine_id"], value_type=ValueType.INT64)
sensor_stats = FeatureView(
    name="sensor_stats", entities=[machine], ttl=timedelta(hours=3),
    schema=[Field(name=n, dtype=Float64) for n in SENSOR + TRENDS], source=_source("sensor_stats"),
)
machine_history = FeatureView(
    name="machine_history", entities=[machine], ttl=timedelta(hours=3),
    schema=[Field(name="hours_since_maintenance", dtype=Float64),
            Field(name="failures_last_7d", dtype=Float64)],
    source=_source("machine_history"),
)
machine_profile = FeatureView(
    name="machine_profile", entities=[machine], ttl=timedelta(0),
    schema=[Field(name="model", dtype=String), Field(name="location", dtype=String)],
    source=_source("machine_profile"),
)


@on_demand_feature_view(
    sources=[sensor_stats[TRENDS]],
    schema=[Field(name="vibration_trend", dtype=Float64),
            Field(name="temperature_trend", dtype=Float64)],
    mode="python",
)
def sensor_trends(inputs: dict) -> dict:
    # the python-mode version proposed for the demo's feature_repo (same code)
    import re

    out = {{}}
    for col in ("vibration", "temperature"):
        windows = sorted(
            int(m.group(1)) for name in inputs if (m := re.fullmatch(rf"{{col}}_mean_(\d+)h", name))
        )
        short = inputs[f"{{col}}_mean_{{windows[0]}}h"]
        long = inputs[f"{{col}}_mean_{{windows[-1]}}h"]
        out[f"{{col}}_trend"] = [
            None if a is None or b is None else float(a - b) for a, b in zip(short, long)
        ]
    return out


bench_model_v1 = FeatureService(
    name="bench_model_v1",
    features=[sensor_stats[SENSOR[:20]], machine_history, machine_profile[["model"]],
              sensor_trends],
)
OBJECTS = [machine, sensor_stats, machine_history, machine_profile, sensor_trends,
           bench_model_v1]
'''

STORE_YAML = """project: serving_bench
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


def make_tables(
    n_entities: int, hours: int, rng: np.random.Generator | None = None
) -> dict[str, pd.DataFrame]:
    """The bench repo's three tables: hourly sensors and history, a static profile
    (drawn from ``rng``, default seed 0)."""
    rng = np.random.default_rng(0) if rng is None else rng
    ids = np.arange(1, n_entities + 1)
    grid = pd.DataFrame(
        {
            "machine_id": np.repeat(ids, hours),
            "event_timestamp": T0
            + pd.to_timedelta(np.tile(np.arange(hours), n_entities), unit="h"),
        }
    )
    grid["created"] = grid["event_timestamp"] + pd.Timedelta(minutes=5)
    sensors = grid.copy()
    for c in SENSOR_EXTRA + TREND_INPUTS:
        sensors[c] = rng.normal(0, 1, len(grid))
    history = grid.copy()
    history["hours_since_maintenance"] = rng.integers(0, 240, len(grid)).astype(float)
    history["failures_last_7d"] = rng.integers(0, 3, len(grid)).astype(float)
    profile = pd.DataFrame(
        {
            "machine_id": ids,
            "event_timestamp": T0 - pd.Timedelta(days=30),
            "created": T0 - pd.Timedelta(days=30),
            "model": rng.choice(["A100", "B200", "C300"], n_entities),
            "location": rng.choice(["north", "south"], n_entities),
        }
    )
    return {"sensor_stats": sensors, "machine_history": history, "machine_profile": profile}


@dataclass
class BenchProject:
    root: Path
    repo: Path
    params_file: Path
    end: pd.Timestamp
    n_entities: int


def make_bench_project(root: Path, n_entities: int = 1000, hours: int = 24) -> BenchProject:
    """Write, apply and materialize the bench repo; register and promote a model."""
    import yaml
    from feast import FeatureStore

    from featureops import registry
    from featureops.config import Paths, load_params
    from featureops.frames import build_frame
    from featureops.training import make_model

    rng = np.random.default_rng(0)
    repo = root / "feature_repo"
    (repo / "tables").mkdir(parents=True)
    tables = make_tables(n_entities, hours, rng)
    for name, df in tables.items():
        write_parquet(df, repo / "tables" / f"{name}.parquet")
    (repo / "feature_store.yaml").write_text(STORE_YAML)
    (repo / "definitions.py").write_text(
        BENCH_REPO.format(sensor=SENSOR_EXTRA, trends=TREND_INPUTS)
    )
    store = FeatureStore(repo_path=str(repo))
    spec = importlib.util.spec_from_file_location("bench_repo_definitions", repo / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    store.apply(module.OBJECTS)
    end = T0 + pd.Timedelta(hours=hours - 1)
    store.materialize(T0 - pd.Timedelta(days=31), end + pd.Timedelta(hours=1))

    repo_params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    params = {
        "paths": {k: f"data/{k}" for k in repo_params["paths"]},
        "feast": {"repo": "feature_repo"},
        "serving": {
            "max_ids": 100,
            "reference_time": end.isoformat(),
            "api_key_env": None,
            "log_flush_rows": 1000,
            "log_flush_seconds": 30,
            "refresh_seconds": 10,
            "workers": 2,
        },
    }
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    paths = Paths.from_params(params, root)
    entities = pd.DataFrame(
        {
            "machine_id": rng.integers(1, n_entities + 1, 5000),
            "event_timestamp": T0 + pd.to_timedelta(rng.integers(6, hours, 5000), unit="h"),
        }
    )
    frame = build_frame(store, SERVICE, entities)
    features = [c for c in frame.columns if c not in ("machine_id", "event_timestamp")]
    numeric = [c for c in features if frame[c].dtype != object]
    label = (frame["s00"] + frame["vibration_trend"] > 1.0).astype(int)
    model = make_model(numeric, ["model"], {"C": 1.0, "class_weight": "balanced"})
    model.fit(frame[[*numeric, "model"]], label)
    registry.save_model(
        model,
        paths.candidate,
        {"feature_service": SERVICE, "threshold": 0.5, "features": list(model.feature_names_in_)},
    )
    registry.promote(paths.registry, registry.register(paths.candidate, paths.registry))
    return BenchProject(root, repo, params_file, end, n_entities)


# ---------------------------------------------------------------------------------------
# In-process online reads.


def online_latency(*_demo_args: Any, repeats: int = 300, project: BenchProject | None = None):
    """featureops' reader vs Feast's get_online_features, in process, on the bench project.

    (Positional arguments are ignored: the bench project replaces the demo store.)
    """
    from feast import FeatureStore

    from featureops.online import build_reader

    with tempfile.TemporaryDirectory(prefix="featureops-online-") as tmp:
        project = project or make_bench_project(Path(tmp) / "p")
        store = FeatureStore(repo_path=str(project.repo))
        service = store.get_feature_service(SERVICE)
        reader = build_reader(store, SERVICE)
        con = reader.connect()
        out = []
        for n in (1, 100):
            ids = [1 + (i * 7919) % project.n_entities for i in range(n)]
            for what, call in (
                ("featureops reader", lambda ids=ids: reader.read(con, {"machine_id": ids})),
                (
                    "get_online_features",
                    lambda ids=ids: store.get_online_features(
                        features=service, entity_rows={"machine_id": ids}
                    ).to_dict(),
                ),
            ):
                call()
                samples = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    call()
                    samples.append(time.perf_counter() - start)
                out.append({"what": f"in-process {what}", "entities": n, **_percentiles(samples)})
                print(f"  {out[-1]}", flush=True)
        return out


# ---------------------------------------------------------------------------------------
# Servers and wrk.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process started for the benchmark (stopped with SIGTERM, by its pid)."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, url: str, body: bytes):
        self.name, self.url, self.body = name, url, body
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.post(self.url, content=self.body, headers=JSON, timeout=5)
                if r.status_code == 200:
                    for _ in range(50):  # warm every worker
                        httpx.post(self.url, content=self.body, headers=JSON, timeout=5)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} not ready:\n{self.log_path.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and all its processes."""
        return _tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM to the server's own process group (it and its workers, nothing else)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants, from /proc (Linux)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1]
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def start_featureops(project: BenchProject, workers: int) -> Server:
    port = _free_port()
    body = json.dumps({"entities": {"machine_id": [17]}}).encode()
    server = Server(
        "featureops",
        [
            sys.executable,
            "-m",
            "featureops.serving",
            "--params",
            str(project.params_file),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        project.root,
        f"http://127.0.0.1:{port}/predict",
        body,
    )
    return _ready(server)


def _ready(server: Server) -> Server:
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def start_feast(project: BenchProject, workers: int) -> Server:
    port = _free_port()
    body = json.dumps({"feature_service": SERVICE, "entities": {"machine_id": [17]}}).encode()
    server = Server(
        "feast",
        [
            str(BIN / "feast"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--max-requests",
            "100000000",
        ],
        project.repo,
        f"http://127.0.0.1:{port}/get-online-features",
        body,
    )
    return _ready(server)


def _seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def wrk(url: str, body: bytes, connections: int, seconds: float, tmp: Path) -> dict[str, Any]:
    """One wrk run (one thread): latency percentiles, requests/s, errors."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not on PATH (Debian: apt-get install -y wrk)")
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = proc.stdout
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "p50_ms": round(_seconds(pct["50"]) * 1000, 3),
        "p90_ms": round(_seconds(pct["90"]) * 1000, 3),
        "p99_ms": round(_seconds(pct["99"]) * 1000, 3),
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": requests,
        "errors": (int(non2xx.group(1)) if non2xx else 0)
        + (sum(int(x) for x in sock.groups()) if sock else 0),
    }


def _bodies(kind: str, n_entities: int) -> dict[int, bytes]:
    out = {}
    for n in (1, 100):
        ids = [1 + (i * 7919) % n_entities for i in range(n)] if n > 1 else [17]
        body: dict[str, Any] = {"entities": {"machine_id": ids}}
        if kind == "feast":
            body = {"feature_service": SERVICE, **body}
        out[n] = json.dumps(body).encode()
    return out


TESTS = ("latency", 1, 1), ("latency", 100, 1)  # (kind, entities, connections)


def measure_round(
    servers: dict[str, Server],
    project: BenchProject,
    seconds: float,
    tmp: Path,
    connections: tuple[int, ...],
    phase: str,
    round_no: int,
) -> list[dict[str, Any]]:
    """Every test once on every server, alternating servers test by test, so a change in
    the machine's background load hits both sides of a ratio alike."""
    tests = [*TESTS, *(("throughput", 1, c) for c in connections)]
    rows = []
    for kind, n, c in tests:
        for name, server in servers.items():
            cpu = server.cpu_seconds()
            r = wrk(server.url, _bodies(name, project.n_entities)[n], c, seconds, tmp)
            # CPU the server spent per request: what the load figures cost, whatever else
            # runs on the machine (other jobs only stretch the wall-clock figures)
            r["server_cpu_ms_per_request"] = round(
                (server.cpu_seconds() - cpu) * 1000 / max(r["requests"], 1), 3
            )
            test = f"{kind}, {c} connection{'s' if c > 1 else ''}"
            rows.append(
                {
                    "server": name,
                    "test": test,
                    "entities": n,
                    "phase": phase,
                    "round": round_no,
                    **r,
                }
            )
            print(f"    [{phase} {round_no}] {name:10} {test:26} {n:>3} entities: {r}", flush=True)
    return rows


def materialize_loop(repo: Path, stop_file: Path, started_file: Path) -> None:
    """Rewrite the whole online store with Feast's materialize until ``stop_file`` exists."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=str(repo))
    runs = 0
    while not stop_file.exists():
        store.materialize(T0 - pd.Timedelta(days=31), T0 + pd.Timedelta(days=2))
        runs += 1
        started_file.write_text(str(runs))


class Materializer:
    def __init__(self, project: BenchProject, tmp: Path):
        self.stop_file = tmp / "stop-materialize"
        self.started_file = tmp / "materialize-runs"
        self.stop_file.unlink(missing_ok=True)
        self.started_file.unlink(missing_ok=True)
        self.log = (tmp / "materialize.log").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.serving_bench",
                "--materialize-loop",
                str(project.repo),
                "--stop-file",
                str(self.stop_file),
                "--started-file",
                str(self.started_file),
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while not self.started_file.exists():  # one full run done: the loop is in steady state
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"materialize loop failed: see {self.log.name}")
            time.sleep(0.2)
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, Any]:
        self.stop_file.write_text("stop")
        self.proc.wait(timeout=300)
        self.log.close()
        runs = int(self.started_file.read_text())
        return {"materialize_runs": runs, "seconds": round(time.monotonic() - self.t0, 1)}


def run(
    seconds: float = 5.0,
    n_entities: int = 1000,
    workers: int = 2,
    connections: tuple[int, ...] = (4, 16),
    rounds: int = 3,
) -> dict[str, Any]:
    """The whole serving benchmark; returns rows, their medians and the ratios of this run."""
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="featureops-serving-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"building the bench project ({n_entities} entities) ...", flush=True)
        project = make_bench_project(tmp / "project", n_entities)
        results["online"] = online_latency(project=project)
        rows: list[dict[str, Any]] = []
        servers: dict[str, Server] = {}
        try:
            print(f"  starting featureops and feast serve ({workers} workers each) ...", flush=True)
            servers["featureops"] = start_featureops(project, workers)
            servers["feast"] = start_feast(project, workers)
            for r in range(rounds):
                rows += measure_round(servers, project, seconds, tmp, connections, "idle", r)
            print("  while Feast's materialize rewrites the online store in a loop:", flush=True)
            mat = Materializer(project, tmp)
            try:
                for r in range(rounds):
                    rows += measure_round(
                        servers, project, seconds, tmp, connections, "materializing", r
                    )
            finally:
                results["materialize_loop"] = mat.stop()
        finally:
            for server in servers.values():
                server.stop()
    results["load_after"] = os.getloadavg()
    results["rows"] = rows
    results["service"] = medians(rows)
    results["ratios"] = ratios(results["service"])
    return results


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server, test and phase: the median over rounds of each figure; errors summed."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["test"], r["entities"], r["phase"]), []).append(r)
    out = []
    for (server, test, n, phase), rs in groups.items():
        med = {
            k: round(statistics.median(r[k] for r in rs), 3)
            for k in ("p50_ms", "p90_ms", "p99_ms", "requests_per_s", "server_cpu_ms_per_request")
        }
        out.append(
            {
                "server": server,
                "test": test,
                "entities": n,
                "phase": phase,
                **med,
                "worst_p99_ms": max(r["p99_ms"] for r in rs),
                "requests": sum(r["requests"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "rounds": len(rs),
            }
        )
    return out


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """featureops vs feast serve (same test and phase); materializing vs idle."""
    index = {(r["server"], r["test"], r["entities"], r["phase"]): r for r in rows}
    out = []
    for (server, test, n, phase), r in index.items():
        if server != "featureops":
            continue
        feast = index.get(("feast", test, n, phase))
        idle = index.get((server, test, n, "idle"))
        mat = phase != "idle"
        out.append(
            {
                "test": test,
                "entities": n,
                "phase": phase,
                "p99_ms": r["p99_ms"],
                "feast_p99_ms": feast["p99_ms"] if feast else None,
                "p99_vs_feast": round(r["p99_ms"] / feast["p99_ms"], 3) if feast else None,
                "requests_per_s": r["requests_per_s"],
                "feast_requests_per_s": feast["requests_per_s"] if feast else None,
                "rps_vs_feast": round(r["requests_per_s"] / feast["requests_per_s"], 2)
                if feast
                else None,
                "cpu_ms_per_request": r["server_cpu_ms_per_request"],
                "feast_cpu_ms_per_request": feast["server_cpu_ms_per_request"] if feast else None,
                "p99_vs_idle": round(r["p99_ms"] / idle["p99_ms"], 2) if mat and idle else None,
                "rps_vs_idle": round(r["requests_per_s"] / idle["requests_per_s"], 2)
                if mat and idle
                else None,
                "errors": r["errors"],
                "feast_errors": feast["errors"] if feast else None,
            }
        )
    return out


def service(*_demo_args: Any, seconds: float = 5.0) -> list[dict[str, Any]]:
    """`bench/__main__` entry: the service rows of :func:`run`, in its table's columns."""
    result = run(seconds=seconds)
    return [
        {
            "what": f"{r['server']} {r['test']}"
            + (f" ({r['phase']})" if r["phase"] != "idle" else ""),
            "entities": r["entities"],
            "p50_ms": r["p50_ms"],
            "p99_ms": r["p99_ms"],
            "n": r["requests"],
            "requests_per_s": r["requests_per_s"],
        }
        for r in result["service"]
    ]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every test (medians)")
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", default="4,16")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of the bench and everything it starts (both servers, wrk, "
        "the materializer alike); e.g. -5 on a machine shared with other jobs",
    )
    parser.add_argument("--materialize-loop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--started-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.materialize_loop:
        materialize_loop(args.materialize_loop, args.stop_file, args.started_file)
        return
    if args.nice:
        os.nice(args.nice)
    connections = tuple(int(c) for c in args.connections.split(","))
    results = run(args.seconds, args.entities, args.workers, connections, args.rounds)
    results["nice"] = args.nice
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(_table(results["online"], ["what", "entities", "p50_ms", "p99_ms", "n"]))
    print()
    print(
        _table(
            results["service"],
            [
                "server",
                "test",
                "entities",
                "phase",
                "p50_ms",
                "p90_ms",
                "p99_ms",
                "worst_p99_ms",
                "requests_per_s",
                "server_cpu_ms_per_request",
                "requests",
                "errors",
            ],
        )
    )
    print()
    print(
        _table(
            results["ratios"],
            [
                "test",
                "entities",
                "phase",
                "p99_ms",
                "feast_p99_ms",
                "p99_vs_feast",
                "requests_per_s",
                "feast_requests_per_s",
                "rps_vs_feast",
                "cpu_ms_per_request",
                "feast_cpu_ms_per_request",
                "p99_vs_idle",
                "rps_vs_idle",
                "errors",
                "feast_errors",
            ],
        )
    )
    print(f"\nmaterialize loop: {results.get('materialize_loop')}")
    print(f"load average before {results['load_before']}, after {results['load_after']}")


if __name__ == "__main__":
    main()
