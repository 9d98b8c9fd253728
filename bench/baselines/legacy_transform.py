"""Baseline: the transform stage before declarative feature tables (git ``a4013da``).

Origin: ``src/featureops/transform.py`` at commit a4013da. What it imported is inlined so
that it runs standalone (no ``featureops`` import) on today's validated Parquet:

- ``featureops.catalog``: the table and column names (constants below);
- ``featureops.normalize``: window_bounds, epoch_us, fit_stats, apply_stats, save/load_stats;
- ``featureops.io``: atomic_path, arrow_timestamps_to_utc_us, write_parquet, write_json;
- ``featureops.config``: ConfigError and a minimal SourceSpec (entity and timestamp; the
  entity is the first of today's ``sources.<name>.keys``, or the old ``entity`` key).

The transform itself (SQL, batches of machines, normalization, Parquet writing) is the
a4013da code unchanged. It reads the old ``transform`` section (:data:`LEGACY_TRANSFORM`,
a4013da's params.yaml); :func:`legacy_params` and :func:`main` (the command line the
benchmark runs) are new.

The old module docstring follows.

All sensor-timeline features come from one DuckDB window query per batch of machines over
the union of sensor readings, maintenance and failure events, ordered per machine by event
time in integer microseconds, so every frame below is exact:

- rolling ``<col>_mean_<w>h`` / ``<col>_max_<w>h``: readings in ``(ts - w, ts]``;
- ``hours_since_maintenance``: since the latest maintenance at or before ts (null if none);
- ``failures_last_<N>d``: failures in ``(ts - N days, ts]``;
- ``failure_next_<H>h``: 1 if a failure in ``(ts, ts + H]``, else 0.

Nothing at time ts uses a row after ts except the label. ``created`` is when a row is
known: for rolling features the latest ``created`` of the readings aggregated; for history
the latest of ts, the used maintenance's ``created`` and the ``created`` of the failures in
the lookback; for labels ``ts + H``. Memory is bounded by ``transform.chunk_rows`` (whole
machines per batch; results do not depend on it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

# --- featureops.catalog (a4013da) -------------------------------------------------------
ENTITY_KEY = "machine_id"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_COLUMN = "created"
SENSOR_TABLE = "sensor_features"
HISTORY_TABLE = "machine_history"
PROFILE_TABLE = "machine_profile"
LABEL_TABLE = "labels"
NORMALIZATION_FILE = "normalization.json"

# --- the transform section of params.yaml (a4013da); the benchmark sets train_window -----
LEGACY_TRANSFORM: dict[str, Any] = {
    "sensor_source": "sensors",
    "maintenance_source": "maintenance",
    "failure_source": "failures",
    "profile_source": "machines",
    "profile_columns": ["model", "location"],
    "sensor_columns": ["temperature", "vibration", "pressure", "rpm"],
    "rolling_windows_hours": [6, 24],
    "failure_lookback_days": 7,
    "label_horizon_hours": 24,
    "train_window": {"start": "2026-01-01", "end": "2026-01-21"},
    "chunk_rows": 1_000_000,
}


def legacy_params(
    sources: dict[str, Any], train_window: dict[str, str], chunk_rows: int = 1_000_000
) -> dict[str, Any]:
    """Params for :func:`write_features`: today's ``sources`` plus the old transform section."""
    transform = {**LEGACY_TRANSFORM, "train_window": dict(train_window), "chunk_rows": chunk_rows}
    return {"sources": sources, "transform": transform}


# --- featureops.config (a4013da), reduced to what the transform reads --------------------
class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class SourceSpec:
    """One source's entity and timestamp columns."""

    name: str
    entity: str
    timestamp: str


def source_specs(params: dict[str, Any]) -> dict[str, SourceSpec]:
    """Every configured source (``entity``, or the first of ``keys``, as the entity)."""
    specs = {}
    for name, raw in (params.get("sources") or {}).items():
        entity = raw.get("entity") or (raw.get("keys") or [None])[0]
        if entity is None or "timestamp" not in raw:
            raise ConfigError(f"params.yaml: sources.{name} needs keys and timestamp")
        specs[name] = SourceSpec(name, entity, raw["timestamp"])
    return specs


# --- featureops.io (a4013da) -------------------------------------------------------------
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; rename it over ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def arrow_timestamps_to_utc_us(table: pa.Table) -> pa.Table:
    """Cast every timestamp column of an Arrow table to ``timestamp[us, UTC]``."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, TIMESTAMP_TYPE, f.nullable))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields), safe=False)


def write_parquet(data: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write Parquet atomically with UTC microsecond timestamps."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    table = arrow_timestamps_to_utc_us(table)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
    return Path(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically, sorted keys, trailing newline."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


# --- featureops.normalize (a4013da) -------------------------------------------------------
STATS = ("mean", "std", "min", "max")


def window_bounds(window: dict[str, str]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of a ``{start, end}`` mapping as UTC timestamps (naive = UTC)."""
    bounds = []
    for key in ("start", "end"):
        ts = pd.Timestamp(window[key])
        bounds.append(ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC"))
    start, end = bounds
    if end <= start:
        raise ValueError(f"normalization window is empty: [{start}, {end})")
    return start, end


def epoch_us(ts: pd.Timestamp) -> int:
    """Microseconds since the Unix epoch of a timezone-aware timestamp."""
    return int(ts.value // 1000)


def fit_stats(
    data: pd.DataFrame | duckdb.DuckDBPyRelation,
    columns: list[str],
    timestamp_column: str,
    window: dict[str, str],
) -> dict[str, Any]:
    """Mean, std (ddof=0), min and max per column over rows with timestamp in ``[start, end)``."""
    start, end = window_bounds(window)
    if isinstance(data, pd.DataFrame):
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")
        rel = con.from_df(data[[timestamp_column, *columns]])
    else:
        rel = data
    ts = f"epoch_us({_q(timestamp_column)})"
    aggs = ["count(*)"] + [
        f"{fn}({_q(c)}::DOUBLE)" for c in columns for fn in ("avg", "stddev_pop", "min", "max")
    ]
    row = (
        rel.filter(f"{ts} >= {epoch_us(start)} AND {ts} < {epoch_us(end)}")
        .aggregate(", ".join(aggs))
        .fetchall()[0]
    )
    rows, values = int(row[0]), row[1:]
    if rows == 0:
        raise ValueError(f"no rows in the normalization window [{start}, {end})")
    stats = {
        col: {
            name: None if v is None else float(v)
            for name, v in zip(STATS, values[4 * i : 4 * i + 4], strict=True)
        }
        for i, col in enumerate(columns)
    }
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "rows": rows,
        "method": {
            "z": "(x - mean) / std, std = population (ddof=0); 0.0 if std == 0",
            "mm": "(x - min) / (max - min); 0.0 if max == min",
        },
        "columns": stats,
    }


def _scale(x: np.ndarray, offset: float | None, scale: float | None) -> np.ndarray:
    """``(x - offset) / scale``; 0.0 where scale is 0; NaN where x or the stats are null."""
    if offset is None or scale is None or not np.isfinite(scale):
        return np.full(x.shape, np.nan)
    if scale == 0:
        return np.where(np.isnan(x), np.nan, 0.0)
    return (x - offset) / scale


def apply_stats(df: pd.DataFrame, stats: dict[str, Any]) -> pd.DataFrame:
    """Return ``df`` plus ``<col>_z`` and ``<col>_mm`` for every fitted column ``df`` has."""
    new: dict[str, np.ndarray] = {}
    fitted = stats["columns"]
    for col in [c for c in df.columns if c in fitted]:
        s = fitted[col]
        x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        new[f"{col}_z"] = _scale(x, s["mean"], s["std"])
        span = None if s["max"] is None or s["min"] is None else s["max"] - s["min"]
        new[f"{col}_mm"] = _scale(x, s["min"], span)
    kept = df.drop(columns=[c for c in new if c in df])
    return pd.concat([kept, pd.DataFrame(new, index=df.index)], axis=1)


def save_stats(stats: dict[str, Any], path: str | Path) -> Path:
    """Write the statistics JSON atomically (floats round-trip exactly through JSON)."""
    return write_json(stats, path)


def load_stats(path: str | Path) -> dict[str, Any]:
    """Read statistics written by :func:`save_stats`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"normalization statistics not found: {path}")
    stats = json.loads(path.read_text())
    if not isinstance(stats, dict) or "columns" not in stats:
        raise ValueError(f"{path}: not a normalization statistics file")
    return stats


# --- featureops.transform (a4013da), unchanged but for the names above ---------------------
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
DEFAULT_CHUNK_ROWS = 1_000_000
ENTITY, TS, CREATED = ENTITY_KEY, EVENT_TIMESTAMP, CREATED_COLUMN


@dataclass(frozen=True)
class TransformConfig:
    """The ``transform`` section of params.yaml, typed."""

    sensor_source: str
    maintenance_source: str
    failure_source: str
    profile_source: str
    sensor_columns: list[str]
    profile_columns: list[str]
    windows_hours: list[int]
    lookback_days: int
    horizon_hours: int
    train_window: dict[str, str]
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TransformConfig:
        t = params.get("transform") or {}
        try:
            cfg = cls(
                sensor_source=t["sensor_source"],
                maintenance_source=t["maintenance_source"],
                failure_source=t["failure_source"],
                profile_source=t["profile_source"],
                sensor_columns=list(t["sensor_columns"]),
                profile_columns=list(t["profile_columns"]),
                windows_hours=sorted(int(w) for w in t["rolling_windows_hours"]),
                lookback_days=int(t["failure_lookback_days"]),
                horizon_hours=int(t["label_horizon_hours"]),
                train_window=dict(t["train_window"]),
                chunk_rows=int(t.get("chunk_rows", DEFAULT_CHUNK_ROWS)),
            )
        except KeyError as exc:
            raise ConfigError(f"params.yaml: missing transform.{exc.args[0]}") from exc
        if not cfg.windows_hours or min(cfg.windows_hours) <= 0:
            raise ConfigError("params.yaml: transform.rolling_windows_hours must be positive")
        if cfg.lookback_days <= 0 or cfg.horizon_hours <= 0 or cfg.chunk_rows <= 0:
            raise ConfigError("params.yaml: transform lookback, horizon, chunk_rows must be > 0")
        return cfg

    @property
    def sources(self) -> dict[str, str]:
        """View name -> source name."""
        return {
            "sensors": self.sensor_source,
            "maintenance": self.maintenance_source,
            "failures": self.failure_source,
            "machines": self.profile_source,
        }

    @property
    def rolling_columns(self) -> list[str]:
        return [
            f"{c}_{a}_{w}h"
            for c in self.sensor_columns
            for w in self.windows_hours
            for a in ("mean", "max")
        ]

    @property
    def failures_column(self) -> str:
        return f"failures_last_{self.lookback_days}d"

    @property
    def label_column(self) -> str:
        return f"failure_next_{self.horizon_hours}h"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(
    validated_dir: str | Path, specs: dict[str, SourceSpec], cfg: TransformConfig
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views ``sensors``, ``maintenance``, ``failures``, ``machines``.

    Each view has ``machine_id``, ``ts`` (event time), ``t`` (ts in epoch microseconds),
    ``created`` and the source's other columns except ``source_file``.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    needed = {
        "sensors": cfg.sensor_columns,
        "maintenance": [],
        "failures": [],
        "machines": cfg.profile_columns,
    }
    for view, source in cfg.sources.items():
        if source not in specs:
            raise ConfigError(f"params.yaml: transform source {source!r} is not in sources")
        spec, path = specs[source], Path(validated_dir) / f"{source}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"validated source {source!r} not found: {path}")
        sql_path = str(path).replace("'", "''")
        have = {
            r[0] for r in con.sql(f"DESCRIBE SELECT * FROM read_parquet('{sql_path}')").fetchall()
        }
        missing = [
            c for c in [spec.entity, spec.timestamp, CREATED, *needed[view]] if c not in have
        ]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        drop = ", ".join(_q(c) for c in (spec.entity, spec.timestamp, "source_file") if c in have)
        con.execute(
            f"""CREATE VIEW {view} AS
                SELECT * EXCLUDE ({drop}), {_q(spec.entity)}::BIGINT AS {ENTITY},
                       {_q(spec.timestamp)} AS ts, epoch_us({_q(spec.timestamp)}) AS t
                FROM read_parquet('{sql_path}')"""
        )
    return con


def rolling_select(cfg: TransformConfig) -> tuple[str, str]:
    """(select list, WINDOW clause) of the rolling aggregates over ``(ts - w, ts]``.

    Frames are on integer microseconds: ``w * 1h - 1µs PRECEDING`` excludes the reading
    exactly w old. Nulls are skipped; a window with no non-null value gives null.
    ``s_created`` is the latest ``created`` over the longest window.
    """
    frame = f"PARTITION BY {ENTITY} ORDER BY t RANGE BETWEEN"
    windows = ", ".join(
        f"w{w} AS ({frame} {w * HOUR_US - 1} PRECEDING AND CURRENT ROW)" for w in cfg.windows_hours
    )
    aggs = [f"max(s_created) OVER w{cfg.windows_hours[-1]} AS s_created"] + [
        f"{fn}({_q(c)}) OVER w{w} AS {_q(f'{c}_{name}_{w}h')}"
        for c in cfg.sensor_columns
        for w in cfg.windows_hours
        for fn, name in (("avg", "mean"), ("max", "max"))
    ]
    return ", ".join(aggs), windows


def timeline_sql(cfg: TransformConfig, where: str) -> str:
    """One row per sensor reading matching ``where``: sensor, history and label columns."""
    raw = ", ".join(f"{_q(c)}::DOUBLE AS {_q(c)}" for c in cfg.sensor_columns)
    raw_names = ", ".join(_q(c) for c in cfg.sensor_columns)
    rolling, rolling_windows = rolling_select(cfg)
    look, horizon = cfg.lookback_days * DAY_US, cfg.horizon_hours * HOUR_US
    frame = f"PARTITION BY {ENTITY} ORDER BY t RANGE BETWEEN"
    return f"""
        WITH ev AS (
            SELECT {ENTITY}, ts, t, created AS s_created, {raw}, TRUE AS is_sensor
            FROM sensors WHERE {where}
            UNION ALL BY NAME
            SELECT {ENTITY}, ts, t, created AS m_created, t AS m_t, FALSE AS is_sensor
            FROM maintenance WHERE {where}
            UNION ALL BY NAME
            SELECT {ENTITY}, ts, t, created AS f_created, 1 AS f, FALSE AS is_sensor
            FROM failures WHERE {where}
        ), win AS (
            SELECT {ENTITY}, ts, t, is_sensor, {raw_names}, {rolling},
                   max(m_t) OVER cum AS m_t, arg_max(m_created, m_t) OVER cum AS m_created,
                   count(f) OVER look AS n_fail, max(f_created) OVER look AS f_created,
                   count(f) OVER ahead AS n_next
            FROM ev
            WINDOW {rolling_windows},
                   cum AS ({frame} UNBOUNDED PRECEDING AND CURRENT ROW),
                   look AS ({frame} {look - 1} PRECEDING AND CURRENT ROW),
                   ahead AS ({frame} 1 FOLLOWING AND {horizon} FOLLOWING)
        )
        SELECT {ENTITY}, ts AS {TS}, s_created, {raw_names},
               {", ".join(_q(c) for c in cfg.rolling_columns)},
               greatest(ts, m_created, f_created) AS h_created,
               (t - m_t)::DOUBLE / {HOUR_US}.0 AS hours_since_maintenance,
               n_fail::DOUBLE AS {_q(cfg.failures_column)},
               ts + to_microseconds({horizon}) AS l_created,
               (n_next > 0)::BIGINT AS {_q(cfg.label_column)}
        FROM win WHERE is_sensor
        ORDER BY {ENTITY}, ts"""


def fit_normalization(con: duckdb.DuckDBPyConnection, cfg: TransformConfig) -> dict[str, Any]:
    """Fit z-score/min-max stats on sensor rows with ts in ``train_window`` only.

    Readings up to the longest window before the start feed those rows' rolling values;
    nothing at or after the end is read.
    """
    start, end = window_bounds(cfg.train_window)
    lo, hi = epoch_us(start) - cfg.windows_hours[-1] * HOUR_US, epoch_us(end)
    rolling, windows = rolling_select(cfg)
    raw = ", ".join(f"{_q(c)}::DOUBLE AS {_q(c)}" for c in cfg.sensor_columns)
    rel = con.sql(
        f"""SELECT ts, {raw}, {rolling} FROM (
                SELECT *, created AS s_created FROM sensors WHERE t >= {lo} AND t < {hi})
            WINDOW {windows}"""
    )
    # Parallel float aggregation sums in a scheduling-dependent order, so the stats (and
    # every normalized column, frame hash and model after them) would differ in the last
    # bits between identical runs. One thread sums in scan order: the same bits every time.
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        return fit_stats(rel, [*cfg.sensor_columns, *cfg.rolling_columns], "ts", cfg.train_window)
    finally:
        con.execute(f"SET threads = {int(threads)}")


def machine_batches(con: duckdb.DuckDBPyConnection, chunk_rows: int) -> list[tuple[int, int]]:
    """Inclusive machine_id ranges, whole machines, about ``chunk_rows`` sensor rows each."""
    counts = con.sql(f"SELECT {ENTITY}, count(*) FROM sensors GROUP BY 1 ORDER BY 1").fetchall()
    batches: list[tuple[int, int]] = []
    lo, rows = None, 0
    for machine, n in counts:
        if lo is None:
            lo, rows = machine, 0
        rows += n
        if rows >= chunk_rows:
            batches.append((lo, machine))
            lo = None
    if lo is not None:
        batches.append((lo, counts[-1][0]))
    return batches


def split_timeline(
    df: pd.DataFrame, cfg: TransformConfig, stats: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """Split a :func:`timeline_sql` result into sensor (normalized), history and label tables."""
    keys = [ENTITY, TS]
    sensors = df[[*keys, "s_created", *cfg.sensor_columns, *cfg.rolling_columns]]
    history = df[[*keys, "h_created", "hours_since_maintenance", cfg.failures_column]]
    labels = df[[*keys, "l_created", cfg.label_column]]
    return {
        SENSOR_TABLE: apply_stats(sensors.rename(columns={"s_created": CREATED}), stats),
        HISTORY_TABLE: history.rename(columns={"h_created": CREATED}),
        LABEL_TABLE: labels.rename(columns={"l_created": CREATED}),
    }


def iter_timeline(
    con: duckdb.DuckDBPyConnection, cfg: TransformConfig, stats: dict[str, Any]
) -> Iterator[dict[str, pd.DataFrame]]:
    """Sensor, history and label tables per batch of machines, in (machine, ts) order."""
    for lo, hi in machine_batches(con, cfg.chunk_rows):
        sql = timeline_sql(cfg, f"{ENTITY} BETWEEN {int(lo)} AND {int(hi)}")
        table = con.sql(sql).arrow().read_all()
        yield split_timeline(table.to_pandas(), cfg, stats)


def machine_profile(con: duckdb.DuckDBPyConnection, cfg: TransformConfig) -> pd.DataFrame:
    """Static attributes, valid from the install date (the source's timestamp)."""
    cols = ", ".join(_q(c) for c in cfg.profile_columns)
    return con.sql(
        f"""SELECT {ENTITY}, ts AS {TS}, created AS {CREATED}, {cols}
            FROM machines ORDER BY {ENTITY}, ts"""
    ).df()


def _count(con: duckdb.DuckDBPyConnection, view: str) -> int:
    return int(con.sql(f"SELECT count(*) FROM {view}").fetchall()[0][0])


def build_features(
    params: dict[str, Any], validated_dir: str | Path, specs: dict[str, SourceSpec]
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """All feature tables in memory plus the fitted normalization stats (tests, small data)."""
    cfg = TransformConfig.from_params(params)
    con = connect(validated_dir, specs, cfg)
    try:
        stats = fit_normalization(con, cfg)
        parts: dict[str, list[pd.DataFrame]] = {}
        for batch in iter_timeline(con, cfg, stats):
            for name, df in batch.items():
                parts.setdefault(name, []).append(df)
        tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in parts.items()}
        tables[PROFILE_TABLE] = machine_profile(con, cfg)
    finally:
        con.close()
    return tables, stats


class _ParquetSink:
    """Append DataFrames to one Parquet file written atomically (UTC microseconds)."""

    def __init__(self, stack: contextlib.ExitStack, path: Path) -> None:
        self.tmp = stack.enter_context(atomic_path(path))
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0
        stack.callback(self.close)  # runs before atomic_path renames the file

    def write(self, df: pd.DataFrame) -> None:
        table = arrow_timestamps_to_utc_us(pa.Table.from_pandas(df, preserve_index=False))
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.tmp, table.schema, coerce_timestamps="us", allow_truncated_timestamps=True
            )
        self.writer.write_table(table.cast(self.writer.schema))
        self.rows += len(df)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def write_features(
    params: dict[str, Any],
    validated_dir: str | Path,
    specs: dict[str, SourceSpec],
    features_dir: str | Path,
    stats_path: str | Path,
) -> dict[str, Any]:
    """Write the four feature tables and the stats file; return row counts in/out.

    Streams one batch of machines at a time. Sensor rows are normalized with the stats
    as re-read from ``stats_path`` (the exact numbers serving loads). Raises RuntimeError
    if sensor rows in != rows out of any sensor-timeline table.
    """
    cfg = TransformConfig.from_params(params)
    features_dir = Path(features_dir)
    con = connect(validated_dir, specs, cfg)
    try:
        save_stats(fit_normalization(con, cfg), stats_path)
        stats = load_stats(stats_path)
        counts = {view: _count(con, view) for view in cfg.sources}
        timeline = (SENSOR_TABLE, HISTORY_TABLE, LABEL_TABLE)
        with contextlib.ExitStack() as stack:
            sinks = {n: _ParquetSink(stack, features_dir / f"{n}.parquet") for n in timeline}
            for batch in iter_timeline(con, cfg, stats):
                for name, df in batch.items():
                    sinks[name].write(df)
            out = {name: sink.rows for name, sink in sinks.items()}
            bad = {n: r for n, r in out.items() if r != counts["sensors"]}
            if bad:
                raise RuntimeError(f"sensor rows in {counts['sensors']} != rows out {bad}")
        profile = machine_profile(con, cfg)
    finally:
        con.close()
    write_parquet(profile, features_dir / f"{PROFILE_TABLE}.parquet")
    summary: dict[str, Any] = {
        "sources": {cfg.sources[v]: n for v, n in counts.items()},
        **{n: {"rows_in": counts["sensors"], "rows_out": r} for n, r in out.items()},
        PROFILE_TABLE: {"rows_in": counts["machines"], "rows_out": len(profile)},
        "normalization": {"fit_rows": stats["rows"], "window": stats["window"]},
    }
    return summary


def write_metrics(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the stage's DVC metrics JSON."""
    return write_json(summary, path)


# --- new: the benchmark's command line ----------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Run :func:`write_features` with a params file holding ``sources`` and ``transform``."""
    parser = argparse.ArgumentParser(description="the a4013da transform stage, standalone")
    parser.add_argument("--params", required=True, help="YAML with sources and transform")
    parser.add_argument("--validated", required=True, help="folder of <source>.parquet")
    parser.add_argument("--features", required=True, help="output folder of the tables")
    parser.add_argument("--stats", required=True, help="normalization statistics JSON path")
    args = parser.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text())
    summary = write_features(
        params, args.validated, source_specs(params), args.features, args.stats
    )
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
