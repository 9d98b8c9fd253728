"""Feature-table declarations: parsing, and every configuration error before any data is read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from featureops.config import ConfigError, source_specs
from featureops.features import (
    Duration,
    build_feature_tables,
    load_feature_tables,
    output_schema,
    parse_duration,
    write_feature_tables,
)

SOURCES = {
    "sensors": {
        "glob": "sensors/*.csv",
        "keys": ["machine_id"],
        "timestamp": "timestamp",
        "columns": {
            "machine_id": "BIGINT",
            "timestamp": "TIMESTAMPTZ",
            "temperature": "DOUBLE",
            "rpm": "DOUBLE",
            "status": "VARCHAR",
        },
    },
    "failures": {
        "glob": "failures/*.csv",
        "keys": ["machine_id"],
        "timestamp": "timestamp",
        "columns": {"machine_id": "BIGINT", "timestamp": "TIMESTAMPTZ", "component": "VARCHAR"},
    },
    "tickets": {  # a key of another type: VARCHAR
        "glob": "tickets/*.csv",
        "keys": ["asset"],
        "timestamp": "opened",
        "columns": {"asset": "VARCHAR", "opened": "TIMESTAMPTZ", "cost": "DOUBLE"},
    },
}
FEATURES = {
    "stats": {
        "source": "sensors",
        "keys": ["machine_id"],
        "filter": "rpm >= 0",
        "derive": {"power": "temperature * rpm"},
        "columns": ["temperature", "power", "status"],
        "windows": [
            {"columns": ["temperature", "power"], "aggs": ["mean", "max"], "every": ["6h", "90m"]}
        ],
        "as_of": [
            {"source": "failures", "name": "failures_7d", "agg": "count", "window": "7d"},
            {"source": "failures", "name": "hours_since_failure", "agg": "since_last"},
            {
                "source": "failures",
                "name": "failures_next_24h",
                "agg": "count",
                "window": "forward 24h",
            },
        ],
        "compute": {"ratio": "temperature_mean_6h / temperature_mean_90m"},
        "exclude": ["failures_next_24h"],
        "normalize": {
            "columns": "all",
            "methods": ["z", "minmax"],
            "fit": {"start": "2026-01-01", "end": "2026-01-21"},
        },
    },
    "profile": {"source": "tickets", "keys": ["asset"], "columns": ["cost"], "offline_only": True},
}


def params() -> dict[str, Any]:
    return {"sources": copy.deepcopy(SOURCES), "features": copy.deepcopy(FEATURES)}


def load(p: dict[str, Any]) -> dict:
    return load_feature_tables(p, source_specs(p))


def test_parse_duration() -> None:
    assert parse_duration("7d") == Duration("7d", 7 * 86_400_000_000)
    assert parse_duration("90m") == Duration("90m", 90 * 60_000_000)
    assert parse_duration("30s").micros == 30_000_000
    assert parse_duration("forward 24h") == Duration("24h", 24 * 3_600_000_000, forward=True)
    assert str(parse_duration("forward 24h")) == "forward 24h"
    for bad in ("0h", "6", "h", "1.5h", "6x", "-1d", "backward 1d", "06h", ""):
        with pytest.raises(ValueError, match="bad window"):
            parse_duration(bad)


def test_a_valid_declaration_loads_in_order() -> None:
    specs = load(params())
    stats = specs["stats"]
    assert list(specs) == ["stats", "profile"]
    assert stats.keys == ("machine_id",) and stats.timestamp == "timestamp"
    assert [w.name for w in stats.windows] == [
        "temperature_mean_6h",
        "temperature_max_6h",
        "temperature_mean_90m",
        "temperature_max_90m",
        "power_mean_6h",
        "power_max_6h",
        "power_mean_90m",
        "power_max_90m",
    ]
    assert stats.windows[4].column_type == "DOUBLE"  # a derived column's bound type
    assert [(a.name, a.agg, str(a.window)) for a in stats.as_of] == [
        ("failures_7d", "count", "7d"),
        ("hours_since_failure", "since_last", "None"),
        ("failures_next_24h", "count", "forward 24h"),
    ]
    assert stats.as_of[0].keys == ("machine_id",)
    assert stats.normalize is not None
    assert stats.normalize.columns == (
        "temperature",
        "power",
        *(w.name for w in stats.windows),
    )  # numeric only: not status
    assert stats.output_columns[:6] == [
        "machine_id",
        "event_timestamp",
        "created",
        "temperature",
        "power",
        "status",
    ]
    assert "failures_next_24h" not in stats.output_columns
    normalized = stats.normalize.output_names
    assert normalized[:3] == ["temperature_z", "temperature_mm", "power_z"]
    assert stats.output_columns[-len(normalized) - 1 :] == ["ratio", *normalized]
    assert specs["profile"].offline_only and specs["profile"].keys == ("asset",)


def test_output_schema_reads_no_data() -> None:
    p = params()
    specs = load(p)
    schema = output_schema(specs["stats"], source_specs(p))
    assert [c for c, _ in schema] == specs["stats"].output_columns
    types = dict(schema)
    assert types["machine_id"] == "BIGINT" and types["status"] == "VARCHAR"
    assert types["event_timestamp"] == types["created"] == "TIMESTAMP WITH TIME ZONE"
    assert types["failures_7d"] == "BIGINT" and types["hours_since_failure"] == "DOUBLE"
    assert dict(output_schema(specs["profile"], source_specs(p)))["asset"] == "VARCHAR"


def table(p: dict) -> dict:
    return p["features"]["stats"]


def set_(path: list[Any], value: Any) -> Callable[[dict], None]:
    """A mutation setting ``features.stats.<path>`` to ``value``."""

    def mutate(p: dict) -> None:
        node = table(p)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def drop(path: list[Any]) -> Callable[[dict], None]:
    def mutate(p: dict) -> None:
        node = table(p)
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def as_of(**fields: Any) -> Callable[[dict], None]:
    """Replace the first lookup with ``fields`` (on top of a valid one)."""
    return set_(["as_of", 0], {"source": "failures", "name": "n", "agg": "count", **fields})


CASES = {
    "no features section": (lambda p: p.pop("features"), "features"),
    "table not a mapping": (lambda p: p["features"].update(stats=["x"]), "features.stats"),
    "bad table name": (
        lambda p: p["features"].update({"bad-name": p["features"].pop("stats")}),
        "features.bad-name",
    ),
    "unknown table field": (set_(["windw"], []), "features.stats.windw"),
    "missing source": (drop(["source"]), "features.stats.source"),
    "unknown source": (set_(["source"], "nope"), "features.stats.source"),
    "unknown key": (set_(["keys"], ["machine"]), "features.stats.keys"),
    "duplicate key": (set_(["keys"], ["machine_id", "machine_id"]), "features.stats.keys"),
    "timestamp unknown": (set_(["timestamp"], "ts"), "features.stats.timestamp"),
    "timestamp not a time": (set_(["timestamp"], "rpm"), "features.stats.timestamp"),
    "unknown column": (set_(["columns"], ["temperature", "humidity"]), "features.stats.columns"),
    "created is not a column": (set_(["columns"], ["created"]), "features.stats.columns"),
    "filter unknown column": (set_(["filter"], "humidity > 0"), "features.stats.filter"),
    "filter not boolean": (set_(["filter"], "rpm + 1"), "features.stats.filter"),
    "filter aggregate": (set_(["filter"], "sum(rpm) > 0"), "features.stats.filter"),
    "filter syntax": (set_(["filter"], "rpm >>> 0"), "features.stats.filter"),
    "filter empty": (set_(["filter"], " "), "features.stats.filter"),
    "derive unknown column": (
        set_(["derive", "power"], "temperature * speed"),
        "features.stats.derive.power",
    ),
    "derive window function": (
        set_(["derive", "power"], "rpm - lag(rpm) OVER ()"),
        "features.stats.derive.power",
    ),
    "derive aggregate": (set_(["derive", "power"], "avg(rpm)"), "features.stats.derive.power"),
    "derive shadows a column": (set_(["derive", "rpm"], "rpm * 2"), "features.stats.derive.rpm"),
    "derive reserved name": (set_(["derive", "__x"], "rpm * 2"), "features.stats.derive"),
    "window unknown field": (
        set_(["windows", 0, "colums"], ["rpm"]),
        "features.stats.windows[0].colums",
    ),
    "window unknown column": (
        set_(["windows", 0, "columns"], ["speed"]),
        "features.stats.windows[0].columns",
    ),
    "window unsupported agg": (
        set_(["windows", 0, "aggs"], ["mean", "median"]),
        "features.stats.windows[0].aggs",
    ),
    "window numeric agg on text": (
        set_(["windows", 0, "columns"], ["status"]),
        "features.stats.windows[0].aggs",
    ),
    "window bad duration": (
        set_(["windows", 0, "every"], ["6x"]),
        "features.stats.windows[0].every",
    ),
    "window zero": (set_(["windows", 0, "every"], ["0h"]), "features.stats.windows[0].every"),
    "window forward": (
        set_(["windows", 0, "every"], ["forward 6h"]),
        "features.stats.windows[0].every",
    ),
    "window empty aggs": (set_(["windows", 0, "aggs"], []), "features.stats.windows[0].aggs"),
    "as_of unknown source": (as_of(source="nope"), "features.stats.as_of[0].source"),
    "as_of unknown field": (as_of(colum="x"), "features.stats.as_of[0].colum"),
    "as_of unsupported agg": (
        as_of(agg="median", column="component"),
        "features.stats.as_of[0].agg",
    ),
    "as_of missing column": (as_of(agg="sum"), "features.stats.as_of[0].column"),
    "as_of unknown column": (as_of(agg="last", column="part"), "features.stats.as_of[0].column"),
    "as_of numeric agg on text": (
        as_of(agg="mean", column="component"),
        "features.stats.as_of[0].column",
    ),
    "as_of since_last column": (
        as_of(agg="since_last", column="component"),
        "features.stats.as_of[0].column",
    ),
    "as_of bad window": (as_of(window="a week"), "features.stats.as_of[0].window"),
    "as_of since_last forward": (
        as_of(agg="since_last", window="forward 1d"),
        "features.stats.as_of[0].window",
    ),
    "as_of unit on count": (as_of(unit="h"), "features.stats.as_of[0].unit"),
    "as_of bad unit": (as_of(agg="since_last", unit="w"), "features.stats.as_of[0].unit"),
    "as_of key count": (as_of(keys=["machine_id", "component"]), "features.stats.as_of[0].keys"),
    "as_of key type": (as_of(source="tickets", keys=["asset"]), "features.stats.as_of[0].keys"),
    "as_of default keys missing": (as_of(source="tickets"), "features.stats.as_of[0].keys"),
    "as_of filter unknown column": (as_of(filter="part = 'x'"), "features.stats.as_of[0].filter"),
    "as_of filter not boolean": (as_of(filter="component"), "features.stats.as_of[0].filter"),
    "as_of missing name": (
        set_(["as_of", 0], {"source": "failures", "agg": "count"}),
        "features.stats.as_of[0].name",
    ),
    "as_of reserved name": (as_of(name="created"), "features.stats.as_of[0].name"),
    "as_of name clashes with a column": (as_of(name="Temperature"), "features.stats.as_of[0].name"),
    "compute unknown column": (
        set_(["compute", "ratio"], "temperature_mean_1h * 2"),
        "features.stats.compute.ratio",
    ),
    "compute aggregate": (
        set_(["compute", "ratio"], "max(temperature)"),
        "features.stats.compute.ratio",
    ),
    "compute clashes with a window": (
        set_(["compute", "temperature_max_6h"], "temperature * 2"),
        "features.stats.compute.temperature_max_6h",
    ),
    "compute reserved name": (
        set_(["compute", "event_timestamp"], "1"),
        "features.stats.compute.event_timestamp",
    ),
    "exclude unknown": (
        set_(["exclude"], ["failures_next_24h", "nope"]),
        "features.stats.exclude[1]",
    ),
    "normalize unknown field": (
        set_(["normalize", "method"], ["z"]),
        "features.stats.normalize.method",
    ),
    "normalize text column": (
        set_(["normalize", "columns"], ["status"]),
        "features.stats.normalize.columns",
    ),
    "normalize lookup column": (
        set_(["normalize", "columns"], ["failures_7d"]),
        "features.stats.normalize.columns",
    ),
    "normalize excluded column": (
        lambda p: (set_(["exclude"], ["power"])(p), set_(["normalize", "columns"], ["power"])(p)),
        "features.stats.normalize.columns",
    ),
    "normalize bad method": (
        set_(["normalize", "methods"], ["zscore"]),
        "features.stats.normalize.methods",
    ),
    "normalize missing fit": (drop(["normalize", "fit"]), "features.stats.normalize.fit"),
    "normalize empty fit": (
        set_(["normalize", "fit"], {"start": "2026-02-01", "end": "2026-01-01"}),
        "features.stats.normalize.fit",
    ),
    "normalize bad date": (
        set_(["normalize", "fit"], {"start": "soon", "end": "2026-01-01"}),
        "features.stats.normalize.fit",
    ),
    "normalized name clash": (
        set_(["compute", "temperature_z"], "temperature * 2"),
        "features.stats.normalize",
    ),
    "offline_only not a bool": (set_(["offline_only"], "yes"), "features.stats.offline_only"),
    "bad declared type": (
        lambda p: p["sources"]["sensors"]["columns"].update(rpm="DOUBLEX"),
        "sources.sensors.columns",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_errors_are_one_line_naming_the_field(case: str, tmp_path: Path) -> None:
    mutate, field = CASES[case]
    p = params()
    mutate(p)
    with pytest.raises(ConfigError) as err:
        load(p)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: {field}:") or message == f"params.yaml: {field}", (
        message
    )
    # The same error comes first from a build, before any data is read.
    missing = tmp_path / "does-not-exist"
    with pytest.raises(ConfigError) as again:
        write_feature_tables(p, missing, tmp_path / "out", tmp_path / "stats")
    assert str(again.value) == message
    with pytest.raises(ConfigError):
        build_feature_tables(p, missing)
    assert not (tmp_path / "out").exists()


def test_a_valid_declaration_with_missing_data_fails_on_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="validated source 'sensors' not found"):
        write_feature_tables(params(), tmp_path, tmp_path / "out", tmp_path / "stats")
