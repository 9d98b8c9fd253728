"""The label a project predicts, from ``params.yaml: label``, and its entity rows.

Either a column of a declared feature table (usually ``offline_only``, built with a forward
window) or a user file (CSV or Parquet) with key columns, a timestamp and the label. Either
way the entity rows are ``<keys>, event_timestamp, <label>``: the rows train, evaluate and
monitor retrieve features for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from featureops.config import ConfigError, Paths
from featureops.conventions import EVENT_TIMESTAMP
from featureops.durations import parse_duration


class LabelError(ValueError):
    """The label rows cannot be read (missing file, column or rows)."""


@dataclass(frozen=True)
class LabelFile:
    """A user's label file: keys, entity time and label columns."""

    path: Path
    keys: tuple[str, ...]
    timestamp: str
    column: str


@dataclass(frozen=True)
class LabelSpec:
    """``params.yaml: label``: the label's name, where its rows come from, its horizon."""

    name: str
    horizon: pd.Timedelta
    table: str | None = None
    file: LabelFile | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any], root: str | Path = ".") -> LabelSpec:
        raw = params.get("label")
        if not isinstance(raw, dict):
            raise ConfigError("params.yaml: label is required (name + table or file)")
        unknown = sorted(set(raw) - {"name", "table", "file", "horizon"})
        if unknown:
            raise ConfigError(f"params.yaml: label.{unknown[0]} is not a known key")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError("params.yaml: label.name must be the label column's name")
        try:
            horizon = pd.Timedelta(
                parse_duration(str(raw.get("horizon", "0h")), allow_zero=True).micros, "us"
            )
        except ValueError as exc:
            raise ConfigError(f"params.yaml: label.horizon: {exc}") from None
        table, file_raw = raw.get("table"), raw.get("file")
        if (table is None) == (file_raw is None):
            raise ConfigError("params.yaml: label needs exactly one of label.table, label.file")
        if table is not None:
            features = params.get("features") or {}
            if table not in features:
                raise ConfigError(f"params.yaml: label.table {table!r} is not in features")
            return cls(name, horizon, table=str(table))
        if not isinstance(file_raw, dict):
            raise ConfigError("params.yaml: label.file must be a mapping")
        for key in ("path", "keys", "timestamp"):
            if key not in file_raw:
                raise ConfigError(f"params.yaml: label.file.{key} is required")
        keys = file_raw["keys"]
        keys = [keys] if isinstance(keys, str) else keys
        if not isinstance(keys, list) or not keys:
            raise ConfigError("params.yaml: label.file.keys must be a list of column names")
        path = Path(root) / str(file_raw["path"])
        labels_dir = Paths.from_params(params, root).labels
        if labels_dir.resolve() not in path.resolve().parents:
            raise ConfigError(
                f"params.yaml: label.file.path {file_raw['path']!r} must be under paths.labels "
                f"({params['paths']['labels']}): the train, evaluate and monitor stages depend "
                "on that folder, so a changed label file re-runs them"
            )
        label_file = LabelFile(
            path=path,
            keys=tuple(str(k) for k in keys),
            timestamp=str(file_raw["timestamp"]),
            column=str(file_raw.get("column", name)),
        )
        return cls(name, horizon, file=label_file)

    def source_path(self, paths: Paths) -> Path:
        """The Parquet or CSV file the label rows are read from."""
        if self.file is not None:
            return self.file.path
        return paths.features / f"{self.table}.parquet"


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def label_rows(
    spec: LabelSpec,
    paths: Paths,
    keys: list[str] | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Entity rows ``<keys>, event_timestamp, <label>`` with entity time in ``[start, end)``.

    ``keys`` are the key columns (for a table label; default: every column that is not the
    timestamp, ``created`` or the label). Sorted by time then keys; raises LabelError if
    the source is missing or the window holds no row.
    """
    path = spec.source_path(paths)
    if not path.exists():
        hint = "run `dvc repro` first" if spec.table else "check label.file.path"
        raise LabelError(f"label rows not found: {path} ({hint})")
    reader = "read_csv" if path.suffix.lower() in (".csv", ".tsv") else "read_parquet"
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        rel = con.sql(f"SELECT * FROM {reader}($path)", params={"path": str(path)})
        if spec.file is not None:
            key_cols, ts_col, label_col = (
                list(spec.file.keys),
                spec.file.timestamp,
                spec.file.column,
            )
        else:
            ts_col, label_col = EVENT_TIMESTAMP, spec.name
            key_cols = keys or [
                c for c in rel.columns if c not in (EVENT_TIMESTAMP, "created", spec.name)
            ]
        missing = [c for c in [*key_cols, ts_col, label_col] if c not in rel.columns]
        if missing:
            raise LabelError(f"{path}: missing column(s) {missing} (params.yaml: label)")
        where, bind = ["TRUE"], {"path": str(path)}
        ts_expr = f"{_q(ts_col)}::TIMESTAMPTZ"
        if start is not None:
            where.append(f"{ts_expr} >= $start")
            bind["start"] = _utc(start)
        if end is not None:
            where.append(f"{ts_expr} < $end")
            bind["end"] = _utc(end)
        cols = ", ".join(_q(c) for c in key_cols)
        df = con.execute(
            f"""SELECT {cols}, {ts_expr} AS {_q(EVENT_TIMESTAMP)}, {_q(label_col)} AS {_q(spec.name)}
                FROM {reader}($path) WHERE {" AND ".join(where)}
                ORDER BY {_q(EVENT_TIMESTAMP)}, {cols}""",
            bind,
        ).df()
    except duckdb.Error as exc:
        raise LabelError(f"{path}: cannot read label rows: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    if df.empty:
        raise LabelError(f"no label rows in {path} for start={start} end={end}")
    df[EVENT_TIMESTAMP] = df[EVENT_TIMESTAMP].dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    return df
