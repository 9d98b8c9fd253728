"""The feature-table compiler against a plain-Python reference on random data.

The reference below loops over rows (no DuckDB) and implements docs/feature-tables.md:
windows over (ts - w, ts], lookups at or before ts or over (ts, ts + w], `last` ties
broken by created then value, `created` as the latest created of every row used.
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featureops.config import ConfigError, source_specs
from featureops.features import (
    FeatureBuildError,
    build_feature_tables,
    compile_table,
    load_feature_tables,
    output_schema,
    write_feature_tables,
)
from featureops.features.dialect import SPARK
from featureops.normalize import apply_stats, load_stats

US = {"s": 10**6, "m": 60 * 10**6, "h": 3600 * 10**6, "d": 86400 * 10**6}
T0 = int(pd.Timestamp("2026-03-01", tz="UTC").value // 1000)
ARROW = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}
SOURCES = {
    "events": {
        "glob": "events/*.csv",
        "keys": ["shop", "region"],
        "timestamp": "ts",
        "columns": {
            "shop": "VARCHAR",
            "region": "INTEGER",
            "ts": "TIMESTAMPTZ",
            "amount": "DOUBLE",
            "qty": "BIGINT",
            "tag": "VARCHAR",
        },
    },
    "orders": {
        "glob": "orders/*.csv",
        "keys": ["store", "zone"],
        "timestamp": "at",
        "columns": {
            "store": "VARCHAR",
            "zone": "INTEGER",
            "at": "TIMESTAMPTZ",
            "price": "DOUBLE",
            "units": "BIGINT",
            "kind": "VARCHAR",
        },
    },
}
ORDERS = {"source": "orders", "keys": ["store", "zone"]}
FEATURES: dict[str, Any] = {
    "shop_stats": {  # string key (a subset of the source's keys)
        "source": "events",
        "keys": ["shop"],
        "columns": ["amount", "qty", "tag"],
        "windows": [
            {
                "columns": ["amount", "qty"],
                "aggs": ["count", "sum", "mean", "min", "max", "std", "last"],
                "every": ["2h", "90m"],
            },
            {"columns": ["tag"], "aggs": ["count", "min", "max", "last"], "every": ["1d"]},
        ],
    },
    "region_history": {  # composite (VARCHAR, INTEGER) keys, lookups with renamed keys
        "source": "events",
        "keys": ["shop", "region"],
        "filter": "qty IS NULL OR qty <> 3",
        "derive": {"amount2": "amount * 2 + qty"},
        "columns": ["amount2"],
        "windows": [{"columns": ["amount2"], "aggs": ["sum", "mean"], "every": ["2h"]}],
        "as_of": [
            {**ORDERS, "name": "mins_since_order", "agg": "since_last", "unit": "m"},
            {**ORDERS, "name": "hours_since_order_3h", "agg": "since_last", "window": "3h"},
            {**ORDERS, "name": "orders_2h", "agg": "count", "window": "2h"},
            {**ORDERS, "name": "orders", "agg": "count"},
            {**ORDERS, "name": "last_kind", "agg": "last", "column": "kind"},
            {**ORDERS, "name": "last_price_3h", "agg": "last", "column": "price", "window": "3h"},
            {**ORDERS, "name": "price_sum", "agg": "sum", "column": "price"},
            {**ORDERS, "name": "price_mean_1d", "agg": "mean", "column": "price", "window": "1d"},
            {**ORDERS, "name": "price_std", "agg": "std", "column": "price"},
            {**ORDERS, "name": "units_min_2h", "agg": "min", "column": "units", "window": "2h"},
            {**ORDERS, "name": "units_max", "agg": "max", "column": "units"},
            {**ORDERS, "name": "units_mean", "agg": "mean", "column": "units"},
            {
                **ORDERS,
                "name": "units_next_2h",
                "agg": "sum",
                "column": "units",
                "window": "forward 2h",
                "filter": "kind <> 'refund'",
            },
            {**ORDERS, "name": "orders_next_1h", "agg": "count", "window": "forward 1h"},
            {
                **ORDERS,
                "name": "priced_next_90m",
                "agg": "count",
                "column": "price",
                "window": "forward 90m",
            },
        ],
        "compute": {
            "has_next": "(orders_next_1h > 0)::BIGINT",
            "avg2": "amount2_sum_2h / nullif(orders_2h, 0)",
        },
        "exclude": ["orders_next_1h"],
    },
    "order_log": {  # static: only columns
        "source": "orders",
        "columns": ["price", "kind"],
    },
    "shop_norm": {
        "source": "events",
        "keys": ["shop"],
        "columns": ["amount", "qty", "tag"],
        "windows": [{"columns": ["amount"], "aggs": ["mean", "max"], "every": ["2h"]}],
        "normalize": {
            "columns": "all",
            "methods": ["z", "minmax"],
            "fit": {"start": "2026-03-01T06:00:00Z", "end": "2026-03-02T00:00:00Z"},
        },
        "offline_only": True,
    },
}
# Python twins of the SQL expressions above (None is SQL NULL).
FILTERS: dict[str, Callable[[dict], bool]] = {
    "region_history": lambda r: r["qty"] is None or r["qty"] != 3,
}
AS_OF_FILTERS = {"units_next_2h": lambda r: r["kind"] is not None and r["kind"] != "refund"}
DERIVE = {
    "amount2": lambda r: (
        None if r["amount"] is None or r["qty"] is None else r["amount"] * 2 + r["qty"]
    )
}
COMPUTE = {
    "has_next": lambda f: int(f["orders_next_1h"] > 0),
    "avg2": lambda f: (
        None
        if f["amount2_sum_2h"] is None or f["orders_2h"] == 0
        else f["amount2_sum_2h"] / f["orders_2h"]
    ),
}


def make_params(features: dict[str, Any] | None = None, chunk_rows: int = 1_000_000) -> dict:
    return {
        "sources": copy.deepcopy(SOURCES),
        "features": copy.deepcopy(features if features is not None else FEATURES),
        "transform": {"chunk_rows": chunk_rows},
    }


# -- data ------------------------------------------------------------------------------
def maybe(rng: np.random.Generator, value: Any, p_null: float) -> Any:
    return None if rng.random() < p_null else value


def random_data(seed: int) -> dict[str, list[dict]]:
    """Small random sources: ties in time, values on a grid, nulls, late rows."""
    rng = np.random.default_rng(seed)
    events = []
    for _ in range(70):
        t = T0 + int(rng.integers(0, 60)) * 30 * US["m"]  # a 30-minute grid: exact boundaries
        events.append(
            {
                "shop": str(rng.choice(["a", "b", "c"])),
                "region": int(rng.integers(1, 3)),
                "ts": t,
                "created": t + int(rng.choice([0, 5, 60, 26 * 60])) * US["m"],  # 26 h: late
                "amount": maybe(rng, round(float(rng.normal(0, 10)), 1), 0.2),
                "qty": maybe(rng, int(rng.integers(0, 6)), 0.2),
                "tag": maybe(rng, str(rng.choice(["x", "y", "z"])), 0.2),
            }
        )
    orders = []
    for _ in range(60):
        t = T0 + int(rng.integers(-8, 120)) * 15 * US["m"]
        orders.append(
            {
                "store": str(rng.choice(["a", "b", "c", "d"])),
                "zone": int(rng.integers(1, 4)),
                "at": t,
                "created": t + int(rng.choice([0, 30, 40 * 60])) * US["m"],
                "price": maybe(rng, float(rng.normal(50, 20)), 0.15),
                "units": maybe(rng, int(rng.integers(-3, 10)), 0.15),
                "kind": maybe(rng, str(rng.choice(["buy", "refund", "swap"])), 0.1),
            }
        )
    return {"events": events, "orders": orders}


def write_validated(root: Path, data: dict[str, list[dict]]) -> Path:
    """Validated Parquet per source: declared columns, created, source_file."""
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        columns = {**SOURCES[name]["columns"], "created": "TIMESTAMPTZ"}
        arrays = {
            c: pa.array([r[c] for r in rows], ARROW[t] if t != "TIMESTAMPTZ" else pa.int64())
            for c, t in columns.items()
        }
        for c, t in columns.items():
            if t == "TIMESTAMPTZ":
                arrays[c] = arrays[c].cast(ARROW[t])
        arrays["source_file"] = pa.array([f"{name}/x.csv"] * len(rows), pa.string())
        pq.write_table(pa.table(arrays), root / f"{name}.parquet")
    return root


# -- reference ---------------------------------------------------------------------------
def duration(text: str) -> tuple[int, bool]:
    forward = text.startswith("forward ")
    amount = text.split()[-1]
    return int(amount[:-1]) * US[amount[-1]], forward


def in_frame(t: int, other: int, window: str | None) -> bool:
    if window is None:
        return other <= t
    w, forward = duration(window)
    return t < other <= t + w if forward else t - w < other <= t


def aggregate(agg: str, rows: list[dict], column: str) -> Any:
    """``agg`` of ``column`` over ``rows`` (each with ``__t`` and ``created``), nulls skipped."""
    used = [r for r in rows if r[column] is not None]
    values = [r[column] for r in used]
    if agg == "count":
        return len(values)
    if not values:
        return None
    exact = all(isinstance(v, int) for v in values)
    if agg == "sum":
        return sum(values) if exact else math.fsum(values)
    if agg == "mean":
        return sum(values) / len(values) if exact else math.fsum(values) / len(values)
    if agg in ("min", "max"):
        return min(values) if agg == "min" else max(values)
    if agg == "std":
        return statistics.stdev(values) if len(values) > 1 else None
    if agg == "last":
        return max((r["__t"], r["created"], r[column]) for r in used)[2]
    raise AssertionError(agg)


def reference(name: str, data: dict[str, list[dict]]) -> list[dict]:
    """Rows of table ``name`` computed by loops, in the documented output order."""
    decl = FEATURES[name]
    source = SOURCES[decl["source"]]
    keys = decl.get("keys", source["keys"])
    keep = FILTERS.get(name, lambda r: True)
    rows = [dict(r, __t=r[source["timestamp"]]) for r in data[decl["source"]] if keep(r)]
    for r in rows:
        r.update({c: DERIVE[c](r) for c in decl.get("derive", {})})
    windows = [
        (f"{c}_{a}_{w}", c, a, w)
        for spec in decl.get("windows", [])
        for c in spec["columns"]
        for w in spec["every"]
        for a in spec["aggs"]
    ]
    longest = max((duration(w)[0] for *_, w in windows), default=None)
    out = []
    for r in rows:
        entity = [x for x in rows if all(x[k] == r[k] for k in keys)]
        features = {c: r[c] for c in decl.get("columns", [])}
        created = r["created"]
        for fname, column, agg, w in windows:
            frame = [x for x in entity if in_frame(r["__t"], x["__t"], w)]
            features[fname] = aggregate(agg, frame, column)
        if longest is not None:
            frame = [x for x in entity if r["__t"] - longest < x["__t"] <= r["__t"]]
            created = max(created, *(x["created"] for x in frame))
        for a in decl.get("as_of", []):
            value, used = lookup(a, r, keys, data)
            features[a["name"]] = value
            created = max(created, used) if used is not None else created
        for cname in decl.get("compute", {}):
            features[cname] = COMPUTE[cname](features)
        row = {k: r[k] for k in keys}
        row.update(event_timestamp=r["__t"], created=created)
        row.update({f: v for f, v in features.items() if f not in decl.get("exclude", [])})
        out.append(row)
    ties = [*decl.get("columns", []), *decl.get("compute", {})]
    order = [*keys, "event_timestamp", "created", *(c for c in ties if c in out[0])]
    return sorted(out, key=lambda row: [(row[c] is None, row[c]) for c in order])


def lookup(a: dict, r: dict, keys: list[str], data: dict) -> tuple[Any, int | None]:
    """(value, created used) of one as_of lookup for timeline row ``r``."""
    source = SOURCES[a["source"]]
    keep = AS_OF_FILTERS.get(a["name"], lambda x: True)
    rows = [
        dict(x, __t=x[source["timestamp"]])
        for x in data[a["source"]]
        if all(x[ak] == r[k] for ak, k in zip(a["keys"], keys, strict=True)) and keep(x)
    ]
    frame = [x for x in rows if in_frame(r["__t"], x["__t"], a.get("window"))]
    if a["agg"] == "since_last":
        if not frame:
            return None, None
        t, created = max((x["__t"], x["created"]) for x in frame)
        return (r["__t"] - t) / US[a.get("unit", "h")], created
    if a["agg"] == "last":
        used = [x for x in frame if x[a["column"]] is not None]
        if not used:
            return None, None
        t, created, value = max((x["__t"], x["created"], x[a["column"]]) for x in used)
        return value, created
    if a["agg"] == "count" and "column" not in a:
        value = len(frame)
    else:
        value = aggregate(a["agg"], frame, a["column"])
    created = max((x["created"] for x in frame), default=None)
    if a.get("window", "").startswith("forward"):
        edge = r["__t"] + duration(a["window"])[0]
        created = edge if created is None else max(created, edge)
    return value, created


# -- comparison --------------------------------------------------------------------------
def records(df: pd.DataFrame) -> list[dict]:
    """DataFrame rows as dicts: timestamps in epoch µs, nulls as None."""
    df = df.copy()
    for c in df.columns:
        if isinstance(df[c].dtype, pd.DatetimeTZDtype):
            df[c] = df[c].astype("int64")
    return [
        {
            k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
            for k, v in row.items()
        }
        for row in df.astype(object).to_dict("records")
    ]


def assert_rows_equal(got: list[dict], expected: list[dict], table: str) -> None:
    assert len(got) == len(expected), table
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert list(g) == list(e), f"{table}: columns"
        for column, want in e.items():
            have = g[column]
            where = f"{table} row {i} column {column}: got {have!r}, expected {want!r}\n{e}"
            if want is None or have is None:
                assert have is None and want is None, where
            elif isinstance(want, float) or isinstance(have, float):
                assert have == pytest.approx(want, rel=1e-9), where
            else:
                assert have == want, where


SEEDS = [0, 1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def random_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[dict, dict]]:
    """(data, built tables) per seed, built once for the module."""
    out = {}
    for seed in SEEDS:
        data = random_data(seed)
        root = write_validated(tmp_path_factory.mktemp(f"seed{seed}"), data)
        out[seed] = (data, build_feature_tables(make_params(), root))
    return out


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("table", ["shop_stats", "region_history", "order_log"])
def test_tables_match_the_python_reference(random_builds: dict, table: str, seed: int) -> None:
    data, tables = random_builds[seed]
    assert_rows_equal(records(tables[table]), reference(table, data), table)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_normalization_uses_stats_fit_on_the_window(random_builds: dict, seed: int) -> None:
    data, tables = random_builds[seed]
    expected = reference("shop_norm", data)
    raw = [c for c in tables["shop_norm"].columns if not c.endswith(("_z", "_mm"))]
    assert_rows_equal(records(tables["shop_norm"][raw]), expected, "shop_norm")
    start = int(pd.Timestamp("2026-03-01T06:00Z").value // 1000)
    end = int(pd.Timestamp("2026-03-02T00:00Z").value // 1000)
    fit = [r for r in expected if start <= r["event_timestamp"] < end]
    columns = ["amount", "qty", "amount_mean_2h", "amount_max_2h"]  # numeric only: not tag
    stats: dict[str, Any] = {"columns": {}}
    for c in columns:
        values = [r[c] for r in fit if r[c] is not None]
        stats["columns"][c] = {
            "mean": math.fsum(values) / len(values),
            "std": statistics.pstdev(values),
            "min": min(values),
            "max": max(values),
        }
    want = apply_stats(pd.DataFrame({c: [r[c] for r in expected] for c in columns}), stats)
    got = tables["shop_norm"]
    assert list(got.columns) == [*raw, *(f"{c}_{s}" for c in columns for s in ("z", "mm"))]
    for c in columns:
        for suffix in ("z", "mm"):
            name = f"{c}_{suffix}"
            np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-12)


def test_written_files_do_not_depend_on_chunk_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("featureops.features.build.ROW_GROUP_ROWS", 7)  # several row groups
    root = write_validated(tmp_path / "validated", random_data(7))
    digests = []
    for size in (1, 2, 1_000_000):
        out = tmp_path / f"chunk{size}"
        summary = write_feature_tables(make_params(chunk_rows=size), root, out, out / "stats")
        for name, counts in summary["tables"].items():
            assert counts["rows_in"] == counts["rows_out"] > 0, name
        digests.append({p.name: p.read_bytes() for p in sorted(out.rglob("*.*"))})
    assert sorted(digests[0]) == [
        "order_log.parquet",
        "region_history.parquet",
        "shop_norm.json",
        "shop_norm.parquet",
        "shop_stats.parquet",
    ]
    assert digests[0] == digests[1] == digests[2]
    assert pq.ParquetFile(tmp_path / "chunk1" / "shop_stats.parquet").num_row_groups == 10
    assert summary["tables"]["shop_norm"]["normalization"]["fit_rows"] > 0
    stats = load_stats(tmp_path / "chunk1" / "stats" / "shop_norm.json")
    assert stats["methods"] == ["z", "minmax"]


def test_written_schema_matches_output_schema_and_keeps_key_types(tmp_path: Path) -> None:
    root = write_validated(tmp_path / "validated", random_data(3))
    params = make_params()
    write_feature_tables(params, root, tmp_path / "out", tmp_path / "stats")
    specs = load_feature_tables(params, source_specs(params))
    for name, spec in specs.items():
        schema = pq.read_schema(tmp_path / "out" / f"{name}.parquet")
        declared = output_schema(spec, source_specs(params))
        assert schema.names == [c for c, _ in declared] == spec.output_columns
        assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
        assert schema.field("created").type == pa.timestamp("us", tz="UTC")
    history = pq.read_schema(tmp_path / "out" / "region_history.parquet")
    assert history.field("shop").type == pa.string()
    assert history.field("region").type == pa.int32()  # INTEGER stays INTEGER
    types = dict(output_schema(specs["region_history"], source_specs(params)))
    assert types["region"] == "INTEGER" and types["last_kind"] == "VARCHAR"
    assert types["orders_2h"] == types["units_next_2h"] == types["has_next"] == "BIGINT"
    assert types["mins_since_order"] == types["price_mean_1d"] == "DOUBLE"


# -- hand-written boundaries --------------------------------------------------------------
def event(shop: str, hours: float, amount: float | None, created_h: float | None = None) -> dict:
    t = T0 + int(hours * US["h"])
    created = t if created_h is None else T0 + int(created_h * US["h"])
    return {
        "shop": shop,
        "region": 1,
        "ts": t,
        "created": created,
        "amount": amount,
        "qty": 1,
        "tag": None,
    }


def order(store: str, hours: float, created_h: float | None = None, **values: Any) -> dict:
    t = T0 + int(hours * US["h"])
    row = {
        "store": store,
        "zone": 1,
        "at": t,
        "created": t if created_h is None else T0 + int(created_h * US["h"]),
    }
    return {**row, "price": None, "units": None, "kind": "buy", **values}


def build_one(tmp_path: Path, table: dict, events: list, orders: list) -> pd.DataFrame:
    root = write_validated(tmp_path / "v", {"events": events, "orders": orders})
    return build_feature_tables(make_params({"t": table}), root)["t"]


def test_window_excludes_the_row_exactly_w_old_and_includes_ties(tmp_path: Path) -> None:
    table = {
        "source": "events",
        "keys": ["shop"],
        "windows": [{"columns": ["amount"], "aggs": ["sum", "count", "last"], "every": ["2h"]}],
    }
    rows = [event("a", 0, 1.0), event("a", 2, 2.0), event("a", 2, 4.0, 5), event("a", 4, 8.0)]
    got = build_one(tmp_path, table, rows, [])
    # at 2 h the window (0 h, 2 h] holds both rows at 2 h (ties) but not the one at 0 h
    assert got["amount_sum_2h"].tolist() == [1.0, 6.0, 6.0, 8.0]
    assert got["amount_count_2h"].tolist() == [1, 2, 2, 1]
    assert got["amount_last_2h"].tolist() == [1.0, 4.0, 4.0, 8.0]  # tie: larger created wins
    hours = (got["created"] - pd.Timestamp(T0 * 1000, tz="UTC")) / pd.Timedelta(hours=1)
    assert hours.tolist() == [0, 5, 5, 4]  # the late row at 2 h is exactly 2 h old at 4 h


def test_lookups_at_the_boundaries(tmp_path: Path) -> None:
    table = {
        "source": "events",
        "keys": ["shop"],
        "as_of": [
            {**ORDERS, "keys": ["store"], "name": "since", "agg": "since_last"},
            {**ORDERS, "keys": ["store"], "name": "past_1h", "agg": "count", "window": "1h"},
            {
                **ORDERS,
                "keys": ["store"],
                "name": "next_1h",
                "agg": "count",
                "window": "forward 1h",
            },
        ],
    }
    rows = [event("a", 1, 1.0), event("a", 3, 1.0)]
    orders = [order("a", 0), order("a", 1), order("a", 2, created_h=9), order("b", 1)]
    got = build_one(tmp_path, table, rows, orders)
    assert got["since"].tolist() == [0.0, 1.0]  # an order at ts itself counts, 0 h ago
    assert got["past_1h"].tolist() == [1, 0]  # (ts - 1h, ts]: the order at 0 h is excluded
    assert got["next_1h"].tolist() == [1, 0]  # (ts, ts + 1h]: 2 h is in, 1 h (= ts) is not
    hours = (got["created"] - pd.Timestamp(T0 * 1000, tz="UTC")) / pd.Timedelta(hours=1)
    # row at 1 h: the late order at 2 h is in its forward window (known at 9 h);
    # row at 3 h: its latest order (2 h, known 9 h) and the forward edge 4 h
    assert hours.tolist() == [9, 9]


def test_rows_tied_on_time_come_out_in_a_fixed_order(tmp_path: Path) -> None:
    table = {"source": "events", "keys": ["shop"], "columns": ["amount"]}
    rows = [event("a", 1, a) for a in (3.0, None, -1.0, 2.0)]
    first = build_one(tmp_path / "1", table, rows, [])
    second = build_one(tmp_path / "2", table, rows[::-1], [])
    assert first["amount"].tolist()[:3] == [-1.0, 2.0, 3.0] and first.equals(second)


def test_null_keys_fail_naming_table_and_source(tmp_path: Path) -> None:
    rows = [event("a", 1, 1.0), {**event("a", 2, 1.0), "shop": None}]
    table = {"source": "events", "keys": ["shop"], "columns": ["amount"]}
    with pytest.raises(
        FeatureBuildError, match=r"features\.t: source 'events' has 1 rows with a null key"
    ):
        build_one(tmp_path, table, rows, [])


def test_non_finite_values_in_a_summed_column_fail_naming_the_table(tmp_path: Path) -> None:
    rows = [event("a", 1, 1.0), event("a", 2, math.inf)]
    table = {
        "source": "events",
        "keys": ["shop"],
        "windows": [{"columns": ["amount"], "aggs": ["mean"], "every": ["1h"]}],
    }
    with pytest.raises(
        FeatureBuildError, match=r"^features\.t: .*events.amount has NaN or infinite"
    ):
        build_one(tmp_path, table, rows, [])


def test_compiled_sql_reads_only_the_batch_through_the_hook() -> None:
    params = make_params()
    sources = source_specs(params)
    spec = load_feature_tables(params, sources)["region_history"]
    hooked = compile_table(spec, sources, "__batch_keys")
    assert hooked.count('SEMI JOIN "__batch_keys"') == 1 + len(spec.as_of)
    assert '"orders"."store" = "__b"."shop" AND "orders"."zone" = "__b"."region"' in hooked
    assert "SEMI JOIN" not in compile_table(spec, sources)


def test_float_aggregates_do_not_depend_on_batches_or_tied_row_order(tmp_path: Path) -> None:
    """DuckDB's own DOUBLE window sums change in the last bits with the other entities of
    a batch and the order of tied rows (8 entities x 1000 rows showed it); ours may not."""
    rng = np.random.default_rng(11)
    rows = [
        {
            **event(f"s{k}", i // 2 / 60, float(rng.normal() * 10.0 ** rng.integers(-3, 6))),
            "qty": int(rng.integers(0, 9)),
        }
        for k in range(8)
        for i in range(1000)
    ]
    table = {
        "source": "events",
        "keys": ["shop"],
        "windows": [{"columns": ["amount"], "aggs": ["sum", "mean", "std"], "every": ["200m"]}],
    }
    outputs = []
    for size, order in ((1_000_000, 1), (1000, -1), (3000, 1)):
        root = write_validated(tmp_path / f"v{size}", {"events": rows[::order], "orders": []})
        out = tmp_path / f"out{size}"
        write_feature_tables(make_params({"t": table}, chunk_rows=size), root, out, out)
        outputs.append((out / "t.parquet").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_a_table_with_no_rows_is_written_with_its_schema(tmp_path: Path) -> None:
    root = write_validated(tmp_path / "v", random_data(1))
    table = {"source": "events", "keys": ["shop"], "filter": "false", "columns": ["amount"]}
    params = make_params({"t": table})
    summary = write_feature_tables(params, root, tmp_path / "out", tmp_path / "stats")
    assert summary["tables"]["t"] == {"rows_in": 0, "rows_out": 0}
    written = pq.read_table(tmp_path / "out" / "t.parquet")
    assert written.num_rows == 0
    assert written.schema.names == ["shop", "event_timestamp", "created", "amount"]
    assert written.schema.field("created").type == pa.timestamp("us", tz="UTC")


# -- engines --------------------------------------------------------------------------------
def test_an_unknown_transform_engine_fails_with_one_line(tmp_path: Path) -> None:
    params = {**make_params(), "transform": {"engine": "flink"}}
    with pytest.raises(ConfigError) as info:
        write_feature_tables(params, tmp_path, tmp_path / "out", tmp_path / "stats")
    message = str(info.value)
    assert message == (
        "params.yaml: transform.engine: Input should be 'duckdb' or 'spark' (got 'flink')"
    )
    assert not (tmp_path / "out").exists()


def test_the_spark_rendering_has_no_duckdb_only_syntax() -> None:
    """The same plan in Spark SQL (tests/spark runs it): parsed by sqlglot as Spark."""
    sqlglot = pytest.importorskip("sqlglot")
    params = make_params()
    sources = source_specs(params)
    for name, spec in load_feature_tables(params, sources).items():
        sql = compile_table(spec, sources, dialect=SPARK)
        for duckdb_only in ("::", '"', "UNION ALL BY NAME", "struct_extract", "epoch_us", "{'"):
            assert duckdb_only not in sql, (name, duckdb_only)
        assert "NULLS LAST" in sql
        sqlglot.parse_one(sql, read="spark")
        assert compile_table(spec, sources) != sql
