"""Transform stage: the declarative feature tables against the stage they replaced.

The new stage is ``featureops.features.write_feature_tables`` with the repository's
``params.yaml`` (its ``features`` section); the baseline is the a4013da stage, frozen in
``bench/baselines/legacy_transform.py``. Both read the same validated Parquet
(``<dir>/<source>.parquet``: the declared columns of ``params.yaml: sources`` plus
``created`` and ``source_file``), each run in its own subprocess under ``/usr/bin/time -v``
(wall time, user + system CPU, peak RSS), new and baseline alternating so that load from
other processes on a shared machine hits both alike. The normalization fit window is the
first 20/28 of the days (the demo's 20 of 28), the same for both.

Inputs per size:

- ``simulator``: the demo's own pipeline (``pipelines.simulate``, ``ingest``, ``validate``)
  in a scratch folder: realistic data with quarantined defects, late rows, burn-in events;
- ``synthetic``: written directly with numpy/pyarrow, a block of machines at a time (memory
  stays about one block), with the same shape: hourly readings sorted by machine and time,
  ~0.5% of hours missing, 1% delivered late, maintenance every ~10 days and ~0.05 failures
  per machine-day from 30 days before the start, a registry of machines.

After the last run of a size where both finished, the tables are compared row by row
(joined on machine and time): row counts and the largest absolute difference per group of
columns (rolling, normalized, raw, history, label).

``python -m bench --only transform`` (``--quick``: demo and 724k only) runs it through the
suite; ``python -m bench.transform_bench [--quick] [--sizes 724k,10M] [--repeats N]
[--keep DIR] [--markdown]`` runs it on its own (``--keep`` reuses the inputs next time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from bench.baselines.legacy_transform import legacy_params

REPO = Path(__file__).resolve().parents[1]
START = "2026-01-01"
FIT_SHARE = 20 / 28  # the demo fits normalization on its first 20 of 28 days
RSS_LIMIT_MB = 2048  # the issue: peak RSS under 2 GB at 10M sensor rows
NEW, LEGACY = "new", "legacy"
IMPLEMENTATIONS = {
    NEW: "featureops.features (declarative)",
    LEGACY: "a4013da transform (baseline)",
}
# new table -> the baseline's table with the same rows
TABLE_PAIRS = {
    "sensor_stats": "sensor_features",
    "machine_history": "machine_history",
    "failure_labels": "labels",
    "machine_profile": "machine_profile",
}


@dataclass(frozen=True)
class Size:
    name: str
    n_machines: int
    n_days: int
    data: str  # "simulator" or "synthetic"
    repeats: int
    legacy_timeout_s: float | None = None  # None: no limit


QUICK_SIZES = (
    Size("demo", 40, 28, "simulator", 3),
    Size("724k", 500, 60, "simulator", 3),
)
FULL_SIZES = (
    *QUICK_SIZES,
    # the same size synthesized: shows the generator times like the simulator's data
    Size("724k-synthetic", 500, 60, "synthetic", 3),
    Size("10M", 2_000, 210, "synthetic", 1, legacy_timeout_s=600),
)

# A child process: one transform, timed inside too (``transform_s``, imports excluded).
RUNNER = """
import json, sys, time
import yaml
kind, params_path, validated, out, result = sys.argv[1:6]
params = yaml.safe_load(open(params_path))
if kind == "new":
    from featureops.features import write_feature_tables
else:
    from bench.baselines import legacy_transform as legacy
start = time.perf_counter()
if kind == "new":
    summary = write_feature_tables(params, validated, out, out + "/normalization")
else:
    summary = legacy.write_features(
        params, validated, legacy.source_specs(params), out, out + "/normalization.json"
    )
seconds = time.perf_counter() - start
with open(result, "w") as fh:
    json.dump({"transform_s": seconds, "summary": summary}, fh, default=str)
"""


# --------------------------------------------------------------------------- inputs


def fit_window(n_days: int, start: str = START) -> dict[str, str]:
    """``[start, start + 20/28 of the days)``: the demo's fit window, scaled."""
    days = max(1, round(n_days * FIT_SHARE))
    end = np.datetime64(start, "D") + np.timedelta64(days, "D")
    return {"start": start, "end": str(end)}


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": path,
        "TQDM_DISABLE": "1",
    }


def simulate_inputs(params: dict[str, Any], size: Size, root: Path) -> Path:
    """The demo pipeline's validated Parquet (simulate, ingest, validate) under ``root``."""
    p = json.loads(json.dumps(params))
    p["simulate"].update(n_machines=size.n_machines, n_days=size.n_days, start_date=START)
    p["paths"]["landing"] = "data/demo/landing"
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    for stage in ("simulate", "ingest", "validate"):
        proc = subprocess.run(
            [sys.executable, "-m", f"pipelines.{stage}", "--params", "params.yaml"],
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{stage} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return root / p["paths"]["validated"]


ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
}
# (mean, machine-to-machine sd, noise sd, daily amplitude, decimals): the simulator's scale
READINGS = {
    "temperature": (75.0, 4.0, 2.0, 3.0, 2),
    "vibration": (4.5, 1.2, 0.5, 0.0, 3),
    "pressure": (116.0, 2.0, 2.0, 0.0, 2),
    "rpm": (1490.0, 20.0, 15.0, 0.0, 1),
}
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
MINUTE_US = 60_000_000


def _schema(spec: dict[str, Any]) -> pa.Schema:
    fields = []
    for column, kind in spec["columns"].items():
        if kind.upper() not in ARROW_TYPES:
            raise ValueError(f"synthetic inputs: column {column!r} has unsupported type {kind}")
        fields.append(pa.field(column, ARROW_TYPES[kind.upper()]))
    return pa.schema(
        [
            *fields,
            pa.field("created", ARROW_TYPES["TIMESTAMPTZ"]),
            pa.field("source_file", pa.string()),
        ]
    )


def _drops(source: str, days: list[str]) -> list[str]:
    """``source_file`` of each day's drop, as ingest records it."""
    return [f"{source}/{source}_{day}.csv" for day in days]


def _day_names(first_day_us: int, n: int) -> list[str]:
    days = np.datetime64(first_day_us, "us").astype("datetime64[D]") + np.arange(n)
    return [str(d) for d in days]


class _Synth:
    """Column values for one source from its declaration (keys, timestamp, types, checks)."""

    def __init__(self, name: str, spec: dict[str, Any], simulate: dict[str, Any]) -> None:
        self.name, self.spec, self.simulate = name, spec, simulate
        self.schema = _schema(spec)
        self.keys = list(spec.get("keys") or [spec.get("entity")])
        self.timestamp = spec["timestamp"]
        self.checks = spec.get("checks") or {}

    def table(
        self,
        rng: np.random.Generator,
        machine: np.ndarray,
        ts_us: np.ndarray,
        created_us: np.ndarray,
        files: tuple[np.ndarray, list[str]],
    ) -> pa.Table:
        """Rows for ``machine`` ids at ``ts_us``; other columns from the declared types.

        ``files``: each row's index into the drop names (``source_file``).
        """
        columns: dict[str, pa.Array] = {}
        for f in self.schema:
            if f.name in self.keys:
                columns[f.name] = pa.array(machine, f.type)
            elif f.name == self.timestamp:
                columns[f.name] = pa.array(ts_us, pa.int64()).cast(f.type)
            elif f.name == "created":
                columns[f.name] = pa.array(created_us, pa.int64()).cast(f.type)
            elif f.name == "source_file":
                index, names = files
                columns[f.name] = pa.DictionaryArray.from_arrays(
                    pa.array(index, pa.int32()), pa.array(names, pa.string())
                ).cast(pa.string())
            else:
                columns[f.name] = self._values(rng, f, machine, ts_us)
        return pa.table(columns, schema=self.schema)

    def _values(
        self, rng: np.random.Generator, f: pa.Field, machine: np.ndarray, ts_us: np.ndarray
    ) -> pa.Array:
        n = machine.size
        categories = (self.checks.get("categories") or {}).get(f.name)
        if pa.types.is_string(f.type):
            choices = (
                categories or self.simulate.get(f"{f.name}s") or [f"{f.name}-{i}" for i in range(3)]
            )
            return pa.array(np.asarray(choices, dtype=object)[rng.integers(0, len(choices), n)])
        if pa.types.is_floating(f.type):
            lo, hi = (self.checks.get("ranges") or {}).get(f.name, (0.0, 100.0))
            mean, between, noise, daily, decimals = READINGS.get(
                f.name, ((lo + hi) / 2, (hi - lo) / 50, (hi - lo) / 100, 0.0, 3)
            )
            # a fixed level per machine and column (uniform, sd ``between``), then noise
            u = ((machine * 2_654_435_761 + zlib.crc32(f.name.encode())) % 2**32) / 2**32
            base = mean + between * math.sqrt(12) * (u - 0.5)
            hour = (ts_us // HOUR_US) % 24
            x = base + daily * np.sin(hour / 24 * 2 * np.pi) + rng.normal(0, noise, n)
            return pa.array(np.clip(np.round(x, decimals), lo, hi), f.type)
        if pa.types.is_integer(f.type):
            return pa.array(rng.integers(0, 100, n), f.type)
        raise ValueError(f"synthetic inputs: no generator for {self.name}.{f.name} ({f.type})")


def synthesize_inputs(
    params: dict[str, Any],
    n_machines: int,
    n_days: int,
    out: Path,
    *,
    seed: int = 7,
    block_rows: int = 1_000_000,
    gap_rate: float = 0.005,
    late_rate: float = 0.01,
    burn_in_days: int = 30,
) -> Path:
    """Validated Parquet for the demo's four sources, written a block of machines at a time.

    Sensor rows are hourly per machine from ``START`` over ``n_days`` (``gap_rate`` of them
    missing, as if quarantined; ``late_rate`` delivered 1-2 days late), sorted by machine and
    time. ``created`` is the drop's date plus 24 h, as ingest sets it.
    """
    sources = params["sources"]
    simulate = params.get("simulate") or {}
    out.mkdir(parents=True, exist_ok=True)
    start_us = int(np.datetime64(START, "us").astype(np.int64))
    hours = n_days * 24
    day_names = _day_names(start_us, n_days + 3)
    ids = np.arange(1, n_machines + 1, dtype=np.int64)

    # sensors: blocks of whole machines
    sensors = _Synth("sensors", sources["sensors"], simulate)
    per_block = max(1, block_rows // hours)
    with pq.ParquetWriter(out / "sensors.parquet", sensors.schema) as writer:
        for b, first in enumerate(range(0, n_machines, per_block)):
            rng = np.random.default_rng([seed, 1, b])
            block = ids[first : first + per_block]
            machine = np.repeat(block, hours)
            hour = np.tile(np.arange(hours, dtype=np.int64), block.size)
            keep = rng.random(machine.size) >= gap_rate
            machine, hour = machine[keep], hour[keep]
            day = hour // 24
            late = np.where(rng.random(day.size) < late_rate, rng.integers(1, 3, day.size), 0)
            file_day = day + late
            ts = start_us + hour * HOUR_US
            created = start_us + (file_day + 1) * DAY_US
            drops = (file_day, _drops("sensors", day_names))
            table = sensors.table(rng, machine, ts, created, drops)
            writer.write_table(table, row_group_size=table.num_rows)

    # maintenance and failures: from burn_in_days before the start, delivered from day 0
    first_us = start_us - burn_in_days * DAY_US
    span_us = (n_days + burn_in_days) * DAY_US
    rng = np.random.default_rng([seed, 2])
    every = int(simulate.get("failure", {}).get("maintenance_every_days", 10)) * DAY_US
    k = math.ceil(span_us / (0.8 * every)) + 1
    gaps = every * rng.uniform(0.8, 1.2, (n_machines, k))
    gaps[:, 0] = rng.uniform(0, every, n_machines)
    maint_ts = first_us + np.cumsum(gaps, axis=1).astype(np.int64)
    maint_machine = np.repeat(ids, k).reshape(n_machines, k)
    inside = maint_ts < first_us + span_us
    _write_events(
        sources,
        simulate,
        "maintenance",
        rng,
        maint_machine[inside],
        maint_ts[inside],
        start_us,
        day_names,
        out,
    )

    per_machine = rng.poisson(0.05 * (n_days + burn_in_days), n_machines)
    fail_machine = np.repeat(ids, per_machine)
    fail_ts = first_us + rng.integers(0, span_us, fail_machine.size)
    _write_events(
        sources, simulate, "failures", rng, fail_machine, fail_ts, start_us, day_names, out
    )

    machines = _Synth("machines", sources["machines"], simulate)
    install = start_us - rng.integers(burn_in_days, 6 * 365, n_machines) * DAY_US
    table = machines.table(
        rng, ids, install, install, (np.zeros(n_machines, np.int64), ["machines/machines.csv"])
    )
    pq.write_table(table, out / "machines.parquet")
    return out


def _write_events(
    sources: dict[str, Any],
    simulate: dict[str, Any],
    name: str,
    rng: np.random.Generator,
    machine: np.ndarray,
    ts_us: np.ndarray,
    start_us: int,
    day_names: list[str],
    out: Path,
) -> None:
    """Minute-resolution events, unique per (machine, time), sorted; early ones in day 0's drop."""
    ts_us = ts_us // MINUTE_US * MINUTE_US
    order = np.lexsort((ts_us, machine))
    machine, ts_us = machine[order], ts_us[order]
    first = np.ones(machine.size, bool)
    first[1:] = (machine[1:] != machine[:-1]) | (ts_us[1:] != ts_us[:-1])
    machine, ts_us = machine[first], ts_us[first]
    file_day = np.maximum((ts_us - start_us) // DAY_US, 0)
    created = start_us + (file_day + 1) * DAY_US
    synth = _Synth(name, sources[name], simulate)
    drops = (file_day, _drops(name, day_names))
    pq.write_table(synth.table(rng, machine, ts_us, created, drops), out / f"{name}.parquet")


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    status: str  # "ok", "timeout", "exit <n>"
    wall_s: float | None = None
    cpu_s: float | None = None
    transform_s: float | None = None
    peak_rss_mb: int | None = None
    rows: dict[str, int] | None = None
    error: str | None = None


def _seconds(text: str) -> float:
    """``h:mm:ss`` or ``m:ss.ss`` from /usr/bin/time as seconds."""
    total = 0.0
    for part in text.split(":"):
        total = total * 60 + float(part)
    return total


def run_once(
    kind: str, params_path: Path, validated: Path, out: Path, timeout: float | None
) -> Run:
    """One transform in a fresh subprocess under ``/usr/bin/time -v``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    timing, result = out.parent / f".{out.name}.time", out.parent / f".{out.name}.json"
    result.unlink(missing_ok=True)
    cmd = [
        "/usr/bin/time", "-v", "-o", str(timing),
        sys.executable, "-c", RUNNER, kind, str(params_path), str(validated), str(out), str(result),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout kills the whole group, not only /usr/bin/time
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Run(status="timeout", error=f"killed after {timeout:.0f} s")
    report = timing.read_text() if timing.exists() else ""
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", report)
    user = re.search(r"User time \(seconds\): (\S+)", report)
    system = re.search(r"System time \(seconds\): (\S+)", report)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    run = Run(
        status="ok" if proc.returncode == 0 else f"exit {proc.returncode}",
        wall_s=round(_seconds(wall.group(1)), 2) if wall else None,
        cpu_s=round(float(user.group(1)) + float(system.group(1)), 2) if user and system else None,
        peak_rss_mb=round(int(rss.group(1)) / 1024) if rss else None,
    )
    if proc.returncode != 0:
        last = (stderr or stdout).strip().splitlines()[-1:]
        run.error = last[0][-300:] if last else "no output"
        return run
    run.transform_s = round(json.loads(result.read_text())["transform_s"], 2)
    run.rows = table_rows(out)
    return run


def table_rows(out: Path) -> dict[str, int]:
    return {p.stem: pq.ParquetFile(p).metadata.num_rows for p in sorted(out.glob("*.parquet"))}


# --------------------------------------------------------------------------- checks


def compare(new_dir: Path, legacy_dir: Path) -> dict[str, Any]:
    """Row counts and the largest absolute differences, new vs baseline, joined on keys."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    diffs: dict[str, float] = {}
    out: dict[str, Any] = {"rows_equal": True, "unmatched_rows": 0, "null_mismatches": 0}
    created: dict[str, int] = {}
    for new, old in TABLE_PAIRS.items():
        a, b = new_dir / f"{new}.parquet", legacy_dir / f"{old}.parquet"
        if not a.exists() or not b.exists():
            out["rows_equal"] = False
            out.setdefault("missing_tables", []).append(new if not a.exists() else old)
            continue
        na, nb = pq.ParquetFile(a).metadata.num_rows, pq.ParquetFile(b).metadata.num_rows
        out["rows_equal"] &= na == nb
        ca = {f.name: f.type for f in pq.read_schema(a)}
        cb = {f.name: f.type for f in pq.read_schema(b)}
        keys = ["machine_id", "event_timestamp"]
        on = " AND ".join(f"n.{k} = o.{k}" for k in keys)
        exprs = {
            "unmatched": "count(*) FILTER (WHERE n.machine_id IS NULL OR o.machine_id IS NULL)"
        }
        for c in (c for c in ca if c in cb and c not in keys):
            q = '"' + c.replace('"', '""') + '"'
            if c == "created" or pa.types.is_string(ca[c]) or pa.types.is_string(cb[c]):
                exprs[c] = f"count(*) FILTER (WHERE n.{q} IS DISTINCT FROM o.{q})"
            else:
                exprs[c] = f"max(abs(n.{q}::DOUBLE - o.{q}::DOUBLE))"
                exprs[f"{c}__nulls"] = f"count(*) FILTER (WHERE (n.{q} IS NULL) <> (o.{q} IS NULL))"
        row = con.execute(
            f"SELECT {', '.join(exprs.values())} FROM read_parquet('{a}') n "
            f"FULL OUTER JOIN read_parquet('{b}') o ON {on}"
        ).fetchone()
        values = dict(zip(exprs, row, strict=True))
        out["unmatched_rows"] += int(values.pop("unmatched"))
        for name, value in values.items():
            if name == "created":
                created[new] = int(value)
            elif name.endswith("__nulls"):
                out["null_mismatches"] += int(value)
            elif pa.types.is_string(ca[name]) or pa.types.is_string(cb[name]):
                diffs[f"{new}.{name}"] = float(value)  # mismatching rows
            else:
                diffs[f"{new}.{name}"] = 0.0 if value is None else float(value)
    con.close()
    out["created_mismatches"] = created
    out |= _group_diffs(diffs)
    return out


def _group_diffs(diffs: dict[str, float]) -> dict[str, float | None]:
    groups: dict[str, list[float]] = {
        "rolling": [],
        "normalized": [],
        "raw": [],
        "history": [],
        "label": [],
        "profile": [],
    }
    for key, value in diffs.items():
        table, column = key.split(".", 1)
        if table == "sensor_stats":
            if column.endswith(("_z", "_mm")):
                groups["normalized"].append(value)
            elif re.search(r"_(mean|max|min|sum|count|std)_\d+[hdm]$", column):
                groups["rolling"].append(value)
            else:
                groups["raw"].append(value)
        elif table == "machine_history":
            groups["history"].append(value)
        elif table == "failure_labels":
            groups["label"].append(value)
        else:
            groups["profile"].append(value)
    return {f"max_abs_diff_{g}": (max(v) if v else None) for g, v in groups.items()}


# --------------------------------------------------------------------------- driver


def _new_params(params: dict[str, Any], window: dict[str, str]) -> dict[str, Any]:
    p = json.loads(json.dumps(params))
    for table in (p.get("features") or {}).values():
        if isinstance(table, dict) and isinstance(table.get("normalize"), dict):
            table["normalize"]["fit"] = dict(window)
    return p


def inputs(params: dict[str, Any], size: Size, root: Path) -> tuple[Path, float | None]:
    """The size's validated folder and the seconds it took (None: reused from ``--keep``)."""
    marker = root / "inputs.json"
    wanted = {
        "n_machines": size.n_machines,
        "n_days": size.n_days,
        "data": size.data,
        "sources": params["sources"],
        "simulate": params.get("simulate"),
    }
    validated = root / ("project/data/validated" if size.data == "simulator" else "validated")
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return validated, None
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    if size.data == "simulator":
        found = simulate_inputs(params, size, root / "project")
        assert found == validated, found
    else:
        synthesize_inputs(params, size.n_machines, size.n_days, validated)
    marker.write_text(json.dumps(wanted))
    return validated, round(time.perf_counter() - started, 1)


def sensor_rows(validated: Path) -> int:
    return pq.ParquetFile(validated / "sensors.parquet").metadata.num_rows


def run_size(params: dict[str, Any], size: Size, root: Path) -> tuple[list[dict], dict | None]:
    """Inputs, then new and baseline alternately ``size.repeats`` times; rows and checks."""
    validated, data_s = inputs(params, size, root)
    n = sensor_rows(validated)
    print(f"  {size.name}: {n:,} sensor rows ({size.data}, {data_s} s)", flush=True)
    window = fit_window(size.n_days)
    chunk = int((params.get("transform") or {}).get("chunk_rows", 1_000_000))
    paths = {NEW: root / "new.yaml", LEGACY: root / "legacy.yaml"}
    paths[NEW].write_text(yaml.safe_dump(_new_params(params, window), sort_keys=False))
    paths[LEGACY].write_text(
        yaml.safe_dump(legacy_params(params["sources"], window, chunk), sort_keys=False)
    )
    runs: dict[str, list[Run]] = {NEW: [], LEGACY: []}
    for i in range(size.repeats):
        for kind in (NEW, LEGACY):
            if runs[kind] and runs[kind][-1].status != "ok":
                continue  # a failed or timed-out implementation is not retried
            timeout = size.legacy_timeout_s if kind == LEGACY else None
            run = run_once(kind, paths[kind], validated, root / kind, timeout)
            runs[kind].append(run)
            print(f"    {kind} run {i + 1}: {asdict(run)}", flush=True)
    rows = [_summary(size, n, data_s, window, kind, runs[kind]) for kind in (NEW, LEGACY)]
    new, old = rows
    for key in ("wall_s", "wall_median", "cpu_s", "transform_s", "peak_rss_mb"):
        if new.get(key) and old.get(key):
            new[f"{key}_vs_legacy"] = round(new[key] / old[key], 2)
    both = all(runs[k] and runs[k][-1].status == "ok" for k in (NEW, LEGACY))
    checks = None
    if both:
        checks = {"size": size.name, "sensor_rows": n, **compare(root / NEW, root / LEGACY)}
        print(f"    check: {checks}", flush=True)
    for kind in (NEW, LEGACY):
        shutil.rmtree(root / kind, ignore_errors=True)
    return rows, checks


def _summary(
    size: Size, n: int, data_s: float, window: dict, kind: str, runs: list[Run]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "size": size.name,
        "shape": f"{size.n_machines} x {size.n_days} d",
        "data": size.data,
        "data_s": data_s,
        "sensor_rows": n,
        "fit_window": f"[{window['start']}, {window['end']})",
        "implementation": IMPLEMENTATIONS[kind],
        "kind": kind,
    }
    ok = [r for r in runs if r.status == "ok"]
    if not ok:
        failed = runs[-1] if runs else Run(status="not run")
        row.update(status=failed.status, error=failed.error, runs=0)
        return row
    best = min(ok, key=lambda r: r.wall_s or math.inf)
    walls = [r.wall_s for r in ok if r.wall_s is not None]
    cpus = [r.cpu_s for r in ok if r.cpu_s is not None]
    row.update(
        status="ok",
        runs=len(ok),
        wall_s=best.wall_s,
        wall_s_runs=walls,
        wall_median=round(statistics.median(walls), 2) if walls else None,
        wall_spread=_spread(walls),
        cpu_s=min(cpus) if cpus else None,
        cpu_s_runs=cpus,
        cpu_spread=_spread(cpus),
        transform_s=best.transform_s,
        transform_s_runs=[r.transform_s for r in ok],
        peak_rss_mb=max(r.peak_rss_mb or 0 for r in ok),
        peak_rss_mb_runs=[r.peak_rss_mb for r in ok],
        tables=best.rows,
    )
    return row


def _spread(values: list[float]) -> str:
    """``min-max`` of the runs (one value if one run)."""
    if not values:
        return ""
    return f"{min(values)}-{max(values)}" if len(values) > 1 else str(values[0])


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(
    quick: bool = False,
    sizes: list[str] | None = None,
    keep: Path | None = None,
    repeats: int | None = None,
) -> dict:
    """Every size of the quick or full set (or those named): rows, checks, verdicts.

    ``keep``: work there and reuse its inputs (else a temporary folder); ``repeats``
    overrides the runs per implementation and size.
    """
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    chosen = [s for s in (QUICK_SIZES if quick else FULL_SIZES) if not sizes or s.name in sizes]
    if sizes and not chosen:
        chosen = [s for s in FULL_SIZES if s.name in sizes]
    if repeats:
        chosen = [replace(s, repeats=repeats) for s in chosen]
    result: dict[str, Any] = {"load_average_before": _load_average(), "rows": [], "checks": []}
    with contextlib.ExitStack() as stack:
        if keep is None:
            keep = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="transform-")))
        for size in chosen:
            rows, checks = run_size(params, size, keep / size.name)
            result["rows"] += rows
            if checks:
                result["checks"].append(checks)
    result["load_average_after"] = _load_average()
    result["verdicts"] = verdicts(result["rows"])
    return result


def verdicts(rows: list[dict]) -> dict[str, Any]:
    """The issue's two figures: 724k no slower than the baseline; 10M peak RSS < 2 GB."""
    by = {(r["size"], r["kind"]): r for r in rows}
    out: dict[str, Any] = {}
    new, old = by.get(("724k", NEW)), by.get(("724k", LEGACY))
    if new and old and new.get("wall_s") and old.get("wall_s"):
        out["724k_wall_vs_legacy"] = new["wall_s_vs_legacy"]
        out["724k_wall_median_vs_legacy"] = new["wall_median_vs_legacy"]
        out["724k_cpu_vs_legacy"] = new.get("cpu_s_vs_legacy")
        # the median: one lucky or unlucky run on a shared machine does not decide it
        out["724k_no_slower"] = new["wall_median"] <= old["wall_median"]
        out["724k_wall_spread"] = {NEW: new["wall_spread"], LEGACY: old["wall_spread"]}
    big = by.get(("10M", NEW))
    if big and big.get("peak_rss_mb"):
        out["10M_peak_rss_mb"] = big["peak_rss_mb"]
        out["10M_under_2GB"] = big["peak_rss_mb"] < RSS_LIMIT_MB
    return out


# --------------------------------------------------------------------------- report


def _table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value else str(value)
    return str(value)


def markdown(t: dict[str, Any]) -> str:
    """The results.md section (``python -m bench`` calls this with results['transform'])."""
    rows = [
        {
            **r,
            "impl": "new" if r["kind"] == NEW else "legacy",
            "wall_s": r.get("wall_s", f"not run ({r['status']})" if r["status"] != "ok" else None),
        }
        for r in t["rows"]
    ]
    checks = [
        {
            **c,
            "created_mismatches": "; ".join(
                f"{table} {n:,}" for table, n in c["created_mismatches"].items() if n
            )
            or "0",
        }
        for c in t["checks"]
    ]
    v = t.get("verdicts", {})
    lines = []
    if "724k_no_slower" in v:
        spread = v["724k_wall_spread"]
        lines.append(
            f"724k: new / legacy median wall {v['724k_wall_median_vs_legacy']} "
            f"({'no slower' if v['724k_no_slower'] else 'SLOWER'} than the baseline), best "
            f"wall {v['724k_wall_vs_legacy']}, CPU {v['724k_cpu_vs_legacy']}; wall over the "
            f"runs: new {spread[NEW]} s, legacy {spread[LEGACY]} s."
        )
    if "10M_under_2GB" in v:
        lines.append(
            f"10M: peak RSS {v['10M_peak_rss_mb']:,} MB "
            f"({'under' if v['10M_under_2GB'] else 'OVER'} 2 GB)."
        )
    return f"""## Transform stage (declarative feature tables vs the a4013da stage)
`featureops.features.write_feature_tables` with the repository's `features` declarations
(`new`) against the stage it replaced (`legacy`, frozen in `bench/baselines/`), on the same
validated Parquet; each run is a fresh process under `/usr/bin/time -v`, new and legacy
alternating. `wall_s`: the best run (whole process); `wall_median` and `wall_spread`:
median and min-max over the runs; `cpu_s`: the least user + system CPU over the runs (less
sensitive than wall to other load); `transform_s`: the call alone in the best run (imports
excluded); `peak_rss_mb`: the largest over the runs. Ratios are new / legacy. Inputs: the
demo's own pipeline (`simulator`: simulate, ingest, validate) or written directly
(`synthetic`); normalization is fit on the first 20/28 of the days. Load average (shared
machine): {t.get("load_average_before")} before, {t.get("load_average_after")} after.

{_table(rows, ["size", "shape", "data", "sensor_rows", "impl", "runs", "wall_s", "wall_median", "wall_spread", "cpu_s", "cpu_spread", "transform_s", "peak_rss_mb", "wall_s_vs_legacy", "wall_median_vs_legacy", "cpu_s_vs_legacy", "peak_rss_mb_vs_legacy"])}

Same rows and values (last run of each size, joined on machine and time): the largest
absolute difference per group of columns, and rows whose `created` differs. `created`
differs by design: the new tables take the latest `created` of every source row used (the
reading's own too), the baseline took the event time for history and ts + 24 h for labels.

{_table(checks, ["size", "sensor_rows", "rows_equal", "unmatched_rows", "max_abs_diff_rolling", "max_abs_diff_normalized", "max_abs_diff_raw", "max_abs_diff_history", "max_abs_diff_label", "null_mismatches", "created_mismatches"])}

{" ".join(lines)}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="demo and 724k only")
    parser.add_argument("--sizes", help="comma-separated size names (e.g. demo,724k,10M)")
    parser.add_argument(
        "--keep", type=Path, help="work in this folder; keep the inputs and reuse them next time"
    )
    parser.add_argument("--repeats", type=int, help="runs per implementation and size")
    parser.add_argument("--markdown", action="store_true", help="print the results.md section")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep = args.keep.resolve()
    sizes = args.sizes.split(",") if args.sizes else None
    result = run(args.quick, sizes, args.keep, args.repeats)
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(result))


if __name__ == "__main__":
    main()
