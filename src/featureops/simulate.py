"""Deterministic predictive-maintenance fleet simulator: writes the demo landing zone.

A hidden wear state per machine grows hourly, raises vibration and temperature, and drives
the failure hazard, so failures are predictable from the sensor history. The clean sensor
truth is generated one day at a time; defects are then injected into each day's drop on
disjoint rows and counted exactly (the summary is the ground truth for tests and metrics).
Memory stays bounded by one day of rows, so params can scale to tens of millions of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from featureops.config import ConfigError
from featureops.io import replace_dir_atomically

TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
VALUE_COLUMNS = ("temperature", "vibration", "pressure", "rpm")
ROUNDING = {"temperature": 2, "vibration": 3, "pressure": 2, "rpm": 1}
ROUTINE_ACTIONS = ("inspection", "lubrication")
REPAIR_ACTION = "part_replacement"
COMPONENTS = ("bearing", "motor", "seal")
DEFECT_KINDS = ("missing", "duplicate", "malformed", "wrong_type", "out_of_range", "late")
BAD_TEXT = ("ERR", "n/a#", "#VALUE!", "--")
REPAIR_DELAY_HOURS = (1, 4)
# Used when no ``sources`` section is given; must agree with params.yaml.
DEFAULT_HEADERS = {
    "sensors": ("machine_id", "timestamp", *VALUE_COLUMNS),
    "machines": ("machine_id", "model", "location", "install_date"),
    "maintenance": ("machine_id", "timestamp", "action"),
    "failures": ("machine_id", "timestamp", "component"),
}
DEFAULT_RANGES = {
    "temperature": (-40.0, 200.0),
    "vibration": (0.0, 50.0),
    "pressure": (0.0, 400.0),
    "rpm": (0.0, 6000.0),
}


@dataclass(frozen=True)
class Layout:
    """Column names (from ``sources``) and physical ranges the simulator writes against."""

    headers: dict[str, tuple[str, ...]]
    ranges: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Events:
    """Discrete events: hour index (relative to start_date), machine index, label."""

    hour: np.ndarray
    machine: np.ndarray
    kind: np.ndarray


# --------------------------------------------------------------------------- configuration


def layout_from_sources(cfg: dict[str, Any], sources: dict[str, Any] | None) -> Layout:
    """Check ``sources`` agrees with what the simulator writes; return headers and ranges."""
    if sources is None:
        return Layout(dict(DEFAULT_HEADERS), dict(DEFAULT_RANGES))
    headers: dict[str, tuple[str, ...]] = {}
    for name, expected in DEFAULT_HEADERS.items():
        if name not in sources:
            raise ConfigError(f"params.yaml: sources.{name} is required by the simulator")
        declared = tuple(sources[name].get("columns", {}))
        if sorted(declared) != sorted(expected):
            raise ConfigError(
                f"params.yaml: sources.{name}.columns {list(declared)} do not match the "
                f"simulated columns {list(expected)}"
            )
        headers[name] = declared
    checks = sources["sensors"].get("checks") or {}
    raw_ranges = checks.get("ranges") or {}
    ranges: dict[str, tuple[float, float]] = {}
    for col in VALUE_COLUMNS:
        lo, hi = raw_ranges.get(col, DEFAULT_RANGES[col])
        ranges[col] = (float(lo), float(hi))
    models = ((sources["machines"].get("checks") or {}).get("categories") or {}).get("model")
    if models is not None and sorted(models) != sorted(cfg["machine_models"]):
        raise ConfigError(
            f"params.yaml: simulate.machine_models {cfg['machine_models']} must match "
            f"sources.machines.checks.categories.model {models}"
        )
    return Layout(headers, ranges)


def _check_config(cfg: dict[str, Any]) -> None:
    """Reject values the simulator cannot honour, naming the key."""
    if int(cfg["n_machines"]) < 1 or int(cfg["n_days"]) < 1:
        raise ConfigError("params.yaml: simulate.n_machines and n_days must be >= 1")
    rates = [float(cfg["defects"][f"{k}_rate"]) for k in DEFECT_KINDS]
    if min(rates) < 0 or sum(rates) >= 1:
        raise ConfigError("params.yaml: simulate.defects rates must be >= 0 and sum to < 1")
    if int(cfg["defects"]["max_late_days"]) < 1:
        raise ConfigError("params.yaml: simulate.defects.max_late_days must be >= 1")


# --------------------------------------------------------------------------- hidden state


def _machines(cfg: dict[str, Any], rng: np.random.Generator, start: pd.Timestamp) -> pd.DataFrame:
    """The machine registry; every install date is strictly before ``start``."""
    n = int(cfg["n_machines"])
    install = start.normalize() - pd.to_timedelta(rng.integers(60, 2000, n), unit="D")
    return pd.DataFrame(
        {
            "machine_id": np.arange(1, n + 1, dtype=np.int64),
            "model": rng.choice(list(cfg["machine_models"]), n),
            "location": rng.choice(list(cfg["locations"]), n),
            "install_date": install,
        }
    )


def _hazard(f: dict[str, Any], wear: np.ndarray) -> np.ndarray:
    """Hourly failure probability for a wear level."""
    exponent = float(f.get("wear_hazard_exponent", 2))
    return float(f["base_hazard_per_hour"]) + float(f["wear_hazard_per_hour"]) * wear**exponent


def simulate_wear(
    cfg: dict[str, Any], rng: np.random.Generator, n: int, burn_in: int, hours: int
) -> tuple[np.ndarray, Events, Events]:
    """Run the wear process for ``burn_in + hours`` hours, vectorized over machines.

    Returns wear[hour, machine] (float32, observed hours only) and the failure and
    maintenance events with hours relative to the first observed hour (burn-in < 0).
    Wear is read at the top of each hour; a failure in that hour resets it to 0 and a
    routine maintenance removes ``maintenance_reset`` of it.
    """
    f = cfg["failure"]
    lo, hi = map(float, f["wear_rate_range"])
    rate = rng.uniform(lo, hi, n)
    period = float(f["maintenance_every_days"]) * 24
    reset = float(f["maintenance_reset"])
    w = rng.uniform(0.0, 0.5, n)
    next_maint = rng.uniform(0.0, period, n)
    wear = np.empty((hours, n), dtype=np.float32)
    fail_h: list[np.ndarray] = []
    fail_m: list[np.ndarray] = []
    maint_h: list[np.ndarray] = []
    maint_m: list[np.ndarray] = []
    for h in range(burn_in + hours):
        w = w + rate * rng.uniform(0.75, 1.25, n)
        if h >= burn_in:
            wear[h - burn_in] = w
        failed = rng.random(n) < _hazard(f, w)
        due = (h >= next_maint) & ~failed
        if failed.any():
            idx = np.flatnonzero(failed)
            fail_h.append(np.full(idx.size, h - burn_in))
            fail_m.append(idx)
            w[idx] = rng.uniform(0.0, 0.05, idx.size)
        if due.any():
            idx = np.flatnonzero(due)
            maint_h.append(np.full(idx.size, h - burn_in))
            maint_m.append(idx)
            w[idx] *= 1.0 - reset
        renew = np.flatnonzero(due | failed)
        next_maint[renew] = h + period * rng.uniform(0.8, 1.2, renew.size)
    failures = _events(fail_h, fail_m, lambda k: rng.choice(COMPONENTS, k))
    routine = _events(maint_h, maint_m, lambda k: rng.choice(ROUTINE_ACTIONS, k))
    return wear, failures, routine


def _events(hours: list[np.ndarray], machines: list[np.ndarray], kinds: Callable) -> Events:
    h = np.concatenate(hours) if hours else np.empty(0, dtype=np.int64)
    m = np.concatenate(machines) if machines else np.empty(0, dtype=np.int64)
    return Events(h.astype(np.int64), m.astype(np.int64), np.asarray(kinds(h.size), dtype=object))


def _repairs(failures: Events, rng: np.random.Generator) -> Events:
    """A part replacement a few hours after every failure."""
    delay = rng.integers(REPAIR_DELAY_HOURS[0], REPAIR_DELAY_HOURS[1] + 1, failures.hour.size)
    kind = np.full(failures.hour.size, REPAIR_ACTION, dtype=object)
    return Events(failures.hour + delay, failures.machine, kind)


# --------------------------------------------------------------------------- sensor rows


def sensor_values(
    cfg: dict[str, Any],
    rng: np.random.Generator,
    wear: np.ndarray,
    model_index: np.ndarray,
    first_hour: int,
) -> dict[str, np.ndarray]:
    """Clean readings for a block of hours; rows ordered by (hour, machine).

    Wear raises temperature and vibration and lowers pressure and rpm, with noise.
    """
    hours, n = wear.shape
    size = hours * n
    w = wear.reshape(-1).astype(np.float64)
    offset = np.tile(model_index, hours) * 2.0
    hour_of_day = np.repeat((first_hour + np.arange(hours)) % 24, n)
    daily = np.sin(hour_of_day / 24 * 2 * np.pi)
    values = {
        "temperature": 60 + offset + 3 * daily + 25 * w + rng.normal(0, 1.5, size),
        "vibration": np.maximum(2.0 + 6.0 * w**1.5 + rng.normal(0, 0.3, size), 0.05),
        "pressure": 120 - 8 * w + rng.normal(0, 2.0, size),
        "rpm": 1500 - 60 * w + 10 * offset + rng.normal(0, 15, size),
    }
    drift = cfg.get("drift") or {}
    if drift.get("enabled") and first_hour >= int(drift["start_day"]) * 24:
        values["temperature"] = values["temperature"] + float(drift["temperature_shift"])
        values["vibration"] = values["vibration"] * float(drift["vibration_scale"])
    return values


def _format(values: np.ndarray, column: str) -> pa.Array:
    return pc.cast(pc.round(pa.array(values), ROUNDING[column]), pa.string())


def sensor_fields(
    values: dict[str, np.ndarray], machine_ids: np.ndarray, timestamps: np.ndarray
) -> dict[str, pa.Array]:
    """Text of every field (Arrow string arrays, C++ formatting), keyed by column."""
    n, hours = machine_ids.size, timestamps.size
    ids = np.tile(machine_ids.astype(str).astype(object), hours)
    ts = np.repeat(timestamps.astype(object), n)
    fields = {"machine_id": pa.array(ids, pa.string()), "timestamp": pa.array(ts, pa.string())}
    fields.update({c: _format(values[c], c) for c in VALUE_COLUMNS})
    return fields


# --------------------------------------------------------------------------- defects


def choose_defect_rows(n_rows: int, rates: dict[str, float], rng: np.random.Generator) -> dict:
    """Disjoint, sorted row indices per defect kind (counts drawn by a multinomial)."""
    p = [rates[k] for k in DEFECT_KINDS]
    counts = rng.multinomial(n_rows, [*p, 1.0 - sum(p)])[:-1]
    order = rng.permutation(n_rows)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {k: np.sort(order[bounds[i] : bounds[i + 1]]) for i, k in enumerate(DEFECT_KINDS)}


def _replace(arr: pa.Array, rows: np.ndarray, new: pa.Array | np.ndarray) -> pa.Array:
    """``arr`` with ``rows`` (sorted) replaced by ``new`` (in the same order)."""
    if rows.size == 0:
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(arr, pa.array(mask), pa.array(new, pa.string()))


def _corrupt_values(
    fields: dict[str, pa.Array],
    rows: dict[str, np.ndarray],
    layout: Layout,
    rng: np.random.Generator,
) -> dict[str, pa.Array]:
    """Blank, garble or push out of range one value field of the chosen rows."""
    fields = dict(fields)
    col_of = {k: rng.integers(0, len(VALUE_COLUMNS), rows[k].size) for k in rows}
    for j, col in enumerate(VALUE_COLUMNS):
        lo, hi = layout.ranges[col]
        span = hi - lo
        missing = rows["missing"][col_of["missing"] == j]
        fields[col] = _replace(fields[col], missing, np.full(missing.size, "", dtype=object))
        bad = rows["wrong_type"][col_of["wrong_type"] == j]
        fields[col] = _replace(fields[col], bad, rng.choice(BAD_TEXT, bad.size).astype(object))
        far = rows["out_of_range"][col_of["out_of_range"] == j]
        below = rng.random(far.size) < 0.5
        magnitude = span * rng.uniform(0.1, 1.0, far.size)
        impossible = np.where(below, lo - magnitude, hi + magnitude)
        fields[col] = _replace(fields[col], far, _format(impossible, col))
    return fields


def _join_lines(fields: dict[str, pa.Array], header: tuple[str, ...]) -> pa.Array:
    return pc.binary_join_element_wise(*(fields[c] for c in header), ",")


def _malform(
    lines: pa.Array,
    fields: dict[str, pa.Array],
    rows: np.ndarray,
    header: tuple[str, ...],
    rng: np.random.Generator,
) -> pa.Array:
    """Rows with one field too few (last dropped) or one too many (extra trailing field)."""
    if rows.size == 0:
        return lines
    idx = pa.array(rows)
    short = pc.binary_join_element_wise(*(pc.take(fields[c], idx) for c in header[:-1]), ",")
    long = pc.binary_join_element_wise(pc.take(lines, idx), pa.scalar("0"), ",")
    return _replace(lines, rows, pc.if_else(pa.array(rng.random(rows.size) < 0.5), short, long))


def inject_defects(
    fields: dict[str, pa.Array],
    day: int,
    n_days: int,
    cfg: dict[str, Any],
    layout: Layout,
    rng: np.random.Generator,
) -> tuple[pa.Array, np.ndarray, dict[str, int]]:
    """Corrupt one day's rows; return (lines, delivery day per line, counts per kind).

    Duplicate lines are inserted right after their original (same file). Late rows move
    1..max_late_days later; a row whose later day is past the last day stays on time and
    is not counted as late.
    """
    d = cfg["defects"]
    n_rows = len(fields["timestamp"])
    rows = choose_defect_rows(n_rows, {k: float(d[f"{k}_rate"]) for k in DEFECT_KINDS}, rng)
    header = layout.headers["sensors"]
    lines = _join_lines(_corrupt_values(fields, rows, layout, rng), header)
    lines = _malform(lines, fields, rows["malformed"], header, rng)
    delivery = np.full(n_rows, day, dtype=np.int64)
    late_day = day + rng.integers(1, int(d["max_late_days"]) + 1, rows["late"].size)
    moved = late_day < n_days
    delivery[rows["late"][moved]] = late_day[moved]
    order = np.sort(np.concatenate([np.arange(n_rows), rows["duplicate"]]), kind="stable")
    counts = {k: int(rows[k].size) for k in DEFECT_KINDS}
    counts["late"] = int(moved.sum())
    return pc.take(lines, pa.array(order)), delivery[order], counts


# --------------------------------------------------------------------------- writing


def _write_lines(path: Path, header: tuple[str, ...], lines: list[pa.Array]) -> None:
    """Write a header and the given line arrays (in order) as one CSV file."""
    body = pa.concat_arrays([a.cast(pa.string()) for a in lines]) if lines else pa.array([])
    with path.open("wb") as fh:
        fh.write((",".join(header) + "\n").encode())
        if len(body):
            offsets = pa.array([0, len(body)], pa.int32())
            joined = pc.binary_join(pa.ListArray.from_arrays(offsets, body), "\n")[0]
            fh.write(joined.as_buffer())
            fh.write(b"\n")


def _day_name(start: pd.Timestamp, day: int) -> str:
    return (start + pd.Timedelta(days=day)).strftime("%Y-%m-%d")


def write_sensor_days(
    root: Path,
    cfg: dict[str, Any],
    layout: Layout,
    rng_for_day: Callable[[int], np.random.Generator],
    wear: np.ndarray,
    machines: pd.DataFrame,
) -> dict[str, int]:
    """Generate, corrupt and write one sensor file per day; return defect and row counts."""
    start = pd.Timestamp(cfg["start_date"], tz="UTC")
    n_days = int(cfg["n_days"])
    model_index = machines["model"].map({m: i for i, m in enumerate(cfg["machine_models"])})
    ids = machines["machine_id"].to_numpy()
    pending: dict[int, list[pa.Array]] = {d: [] for d in range(n_days)}
    totals = dict.fromkeys(DEFECT_KINDS, 0) | {"lines": 0}
    (root / "sensors").mkdir(parents=True)
    for day in range(n_days):
        rng = rng_for_day(day)
        stamps = pd.date_range(start + pd.Timedelta(days=day), periods=24, freq="h")
        values = sensor_values(
            cfg, rng, wear[day * 24 : (day + 1) * 24], model_index.to_numpy(), day * 24
        )
        fields = sensor_fields(values, ids, stamps.strftime(TS_FORMAT).to_numpy())
        lines, delivery, counts = inject_defects(fields, day, n_days, cfg, layout, rng)
        for target in np.unique(delivery[delivery > day]):
            pending[int(target)].append(pc.filter(lines, pa.array(delivery == target)))
        on_time = pc.filter(lines, pa.array(delivery == day))
        path = root / "sensors" / f"sensors_{_day_name(start, day)}.csv"
        _write_lines(path, layout.headers["sensors"], [on_time, *pending.pop(day)])
        counts["lines"] = len(lines)
        totals = {k: totals[k] + counts[k] for k in totals}
    return totals


def _event_frame(
    events: Events,
    machines: pd.DataFrame,
    start: pd.Timestamp,
    column: str,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Events as rows with a random minute within their hour, unique per (machine, ts)."""
    minutes = rng.integers(0, 60, events.hour.size)
    ts = start + pd.to_timedelta(events.hour * 60 + minutes, unit="m")
    df = pd.DataFrame(
        {
            "machine_id": machines["machine_id"].to_numpy()[events.machine],
            "timestamp": ts,
            column: events.kind,
        }
    )
    df = df.sort_values(["timestamp", "machine_id"], kind="stable")
    return df.drop_duplicates(["machine_id", "timestamp"]).reset_index(drop=True)


def _write_event_days(
    root: Path,
    name: str,
    df: pd.DataFrame,
    header: tuple[str, ...],
    start: pd.Timestamp,
    n_days: int,
) -> None:
    """One file per day; events before ``start`` (burn-in history) go in the first file."""
    (root / name).mkdir(parents=True)
    day = ((df["timestamp"] - start) // pd.Timedelta(days=1)).clip(lower=0).to_numpy()
    out = df.assign(timestamp=df["timestamp"].dt.strftime(TS_FORMAT))[list(header)]
    for d in range(n_days):
        path = root / name / f"{name}_{_day_name(start, d)}.csv"
        out[day == d].to_csv(path, index=False, lineterminator="\n")


def _write_machines(root: Path, machines: pd.DataFrame, header: tuple[str, ...]) -> None:
    (root / "machines").mkdir(parents=True)
    out = machines.assign(install_date=machines["install_date"].dt.strftime(TS_FORMAT))
    out[list(header)].to_csv(root / "machines" / "machines.csv", index=False, lineterminator="\n")


# --------------------------------------------------------------------------- entry point


def _concat(a: Events, b: Events) -> Events:
    return Events(
        *(
            np.concatenate([x, y])
            for x, y in ((a.hour, b.hour), (a.machine, b.machine), (a.kind, b.kind))
        )
    )


def _in_window(events: Events, hours: int) -> Events:
    keep = events.hour < hours
    return Events(events.hour[keep], events.machine[keep], events.kind[keep])


def _positive_rate(failures: Events, n: int, hours: int, horizon: int = 24) -> float:
    """Share of hourly readings followed by a failure within (ts, ts + horizon]."""
    hit = np.zeros((hours, n), dtype=bool)
    for lag in range(horizon):  # a reading at h sees failures at h:mm .. (h + horizon - 1):mm
        h = failures.hour - lag
        ok = (h >= 0) & (h < hours)
        hit[h[ok], failures.machine[ok]] = True
    return float(hit.mean())


def simulate_fleet(
    cfg: dict[str, Any], landing: str | Path, sources: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write the demo landing zone to ``landing`` (atomically); return the ground truth.

    ``cfg`` is ``params.yaml: simulate``; ``sources`` (``params.yaml: sources``) supplies
    column order and sensor ranges and is checked against the simulator (None: defaults).
    """
    _check_config(cfg)
    layout = layout_from_sources(cfg, sources)
    seeds = np.random.SeedSequence(int(cfg["seed"])).spawn(4)
    day_seeds = seeds[3].spawn(int(cfg["n_days"]))
    n_days, hours = int(cfg["n_days"]), int(cfg["n_days"]) * 24
    start = pd.Timestamp(cfg["start_date"], tz="UTC")
    machines = _machines(cfg, np.random.default_rng(seeds[0]), start)
    burn_in = int(cfg.get("burn_in_days", 0)) * 24
    wear_rng = np.random.default_rng(seeds[1])
    wear, failures, routine = simulate_wear(cfg, wear_rng, len(machines), burn_in, hours)
    failures = _in_window(failures, hours)
    repairs = _repairs(failures, wear_rng)
    maintenance = _in_window(_concat(routine, repairs), hours)
    event_rng = np.random.default_rng(seeds[2])
    failures_df = _event_frame(failures, machines, start, "component", event_rng)
    maint_df = _event_frame(maintenance, machines, start, "action", event_rng)

    def build(root: Path) -> dict[str, int]:
        _write_machines(root, machines, layout.headers["machines"])
        _write_event_days(
            root, "maintenance", maint_df, layout.headers["maintenance"], start, n_days
        )
        _write_event_days(root, "failures", failures_df, layout.headers["failures"], start, n_days)
        return write_sensor_days(
            root, cfg, layout, lambda d: np.random.default_rng(day_seeds[d]), wear, machines
        )

    totals = replace_dir_atomically(Path(landing), build)
    observed = failures.hour >= 0
    drift = cfg.get("drift") or {}
    return {
        "start_date": str(start.date()),
        "end_date": _day_name(start, n_days - 1),
        "first_timestamp": start.strftime(TS_FORMAT),
        "last_timestamp": (start + pd.Timedelta(hours=hours - 1)).strftime(TS_FORMAT),
        "seed": int(cfg["seed"]),
        "n_days": n_days,
        "n_machines": len(machines),
        "rows": {
            "sensors": totals["lines"],
            "sensor_readings": hours * len(machines),
            "machines": len(machines),
            "maintenance": len(maint_df),
            "failures": len(failures_df),
        },
        "defects": {k: totals[k] for k in DEFECT_KINDS},
        "failures": int(observed.sum()),
        "failures_before_start": int((~observed).sum()),
        "positive_rate_24h": round(_positive_rate(failures, len(machines), hours), 6),
        "drift": bool(drift.get("enabled")),
        "drift_start_date": _day_name(start, int(drift["start_day"]))
        if drift.get("enabled")
        else None,
    }
