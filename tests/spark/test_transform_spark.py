"""The transform stage on Spark (``transform.engine: spark``) writes DuckDB's files.

The same declarations and random data go through both engines; the written Parquet must be
byte-identical (same schema, row order, values and row groups) for every table without
normalization: window and lookup values are exact on both engines (integer counts, min, max,
last; fixed-point float sums converted back to DOUBLE the same way; the same IEEE operations
after that). Normalized columns (``_z``, ``_mm``) use statistics whose mean and std add
doubles in an engine-dependent order, so those (and the stats file's mean/std) are compared
to 1e-9 (relative, or absolute for normalized values near 0, where ``x - mean`` cancels);
every other column of those tables is still exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featureops.config import ConfigError
from featureops.features import write_feature_tables
from tests.conftest import load_repo_params, write_params
from tests.unit.test_feature_compiler import (
    FEATURES,
    ORDERS,
    SOURCES,
    event,
    make_params,
    order,
    random_data,
    write_validated,
)

pytestmark = pytest.mark.spark

# Tiny data on a shared 2-core machine: Spark's code generation costs more than it saves.
FAST_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
}


@pytest.fixture(scope="module")
def session(spark: Any) -> Any:
    """The shared session with this module's settings (restored afterwards)."""
    before = {k: spark.conf.get(k, None) for k in FAST_CONF}
    for key, value in FAST_CONF.items():
        spark.conf.set(key, value)
    yield spark
    for key, value in before.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def spark_params(params: dict) -> dict:
    return {**params, "transform": {**params.get("transform", {}), "engine": "spark"}}


def both_engines(
    tmp_path: Path, params: dict, validated: Path, session: Any
) -> tuple[dict, dict, Path, Path]:
    """Write every table with DuckDB and with Spark; return both summaries and folders."""
    duck, spark = tmp_path / "duckdb", tmp_path / "spark"
    duck_summary = write_feature_tables(params, validated, duck, duck / "stats")
    spark_summary = write_feature_tables(
        spark_params(params), validated, spark, spark / "stats", spark=session
    )
    return duck_summary, spark_summary, duck, spark


def first_difference(a: pa.Table, b: pa.Table) -> str:
    if a.schema != b.schema:
        return f"schemas differ:\n{a.schema}\n{b.schema}"
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows vs {b.num_rows}"
    for name in a.column_names:
        x, y = a.column(name).to_pylist(), b.column(name).to_pylist()
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            if u != v and not (u != u and v != v):  # NaN == NaN here
                return f"column {name!r} row {i}: duckdb {u!r}, spark {v!r}"
    return "bytes differ, values equal"


def assert_same_files(duck: Path, spark: Path, normalized: dict[str, list[str]]) -> None:
    """Byte-equal Parquet, except normalized columns (1e-9 relative) of ``normalized``."""
    names = sorted(p.name for p in duck.glob("*.parquet"))
    assert names == sorted(p.name for p in spark.glob("*.parquet")) and names
    for name in names:
        table = name.removesuffix(".parquet")
        a, b = pq.read_table(duck / name), pq.read_table(spark / name)
        if table not in normalized:
            same = (duck / name).read_bytes() == (spark / name).read_bytes()
            assert same, f"{table}: {first_difference(a, b)}"
            continue
        scaled = normalized[table]
        assert a.schema == b.schema, table
        exact = [c for c in a.column_names if c not in scaled]
        assert a.select(exact).equals(b.select(exact)), f"{table}: {first_difference(a, b)}"
        for column in scaled:
            x = a.column(column).to_numpy(zero_copy_only=False)
            y = b.column(column).to_numpy(zero_copy_only=False)
            # z = (x - mean) / std cancels near the mean: relative there means nothing, so
            # 1e-9 relative or absolute (the demo: 9e-13 absolute, 3e-14 on the mean)
            np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-9, err_msg=f"{table}.{column}")


def assert_same_stats(duck: Path, spark: Path) -> None:
    files = sorted(p.name for p in duck.glob("*.json"))
    assert files == sorted(p.name for p in spark.glob("*.json"))
    for name in files:
        a, b = json.loads((duck / name).read_text()), json.loads((spark / name).read_text())
        assert {k: v for k, v in a.items() if k != "columns"} == {
            k: v for k, v in b.items() if k != "columns"
        }
        assert a["columns"].keys() == b["columns"].keys()
        for column, stats in a["columns"].items():
            other = b["columns"][column]
            assert stats["min"] == other["min"] and stats["max"] == other["max"], column
            for key in ("mean", "std"):
                assert math.isclose(stats[key], other[key], rel_tol=1e-9, abs_tol=1e-12), column


def combined_data(seeds: list[int]) -> dict[str, list[dict]]:
    """The compiler tests' random sources for several seeds, entities kept apart by seed."""
    out: dict[str, list[dict]] = {"events": [], "orders": []}
    for seed in seeds:
        data = random_data(seed)
        out["events"] += [{**r, "shop": f"{seed}{r['shop']}"} for r in data["events"]]
        out["orders"] += [{**r, "store": f"{seed}{r['store']}"} for r in data["orders"]]
    return out


def normalized_columns(table: pa.Table) -> list[str]:
    return [c for c in table.column_names if c.endswith(("_z", "_mm"))]


def test_every_declaration_kind_equals_duckdb_on_random_data(session: Any, tmp_path: Path) -> None:
    """Windows (count/sum/mean/min/max/std/last; string, integer, float columns), as-of
    lookups of every kind (past, unlimited, forward; renamed composite keys; filters),
    filter, derive, compute, exclude, a static table and normalization."""
    validated = write_validated(tmp_path / "validated", combined_data([0, 1, 2, 3]))
    duck_summary, spark_summary, duck, spark = both_engines(
        tmp_path, make_params(), validated, session
    )
    assert spark_summary == duck_summary
    assert duck_summary["tables"]["region_history"]["rows_out"] > 200
    norm = pq.read_table(duck / "shop_norm.parquet")
    assert_same_files(duck, spark, {"shop_norm": normalized_columns(norm)})
    assert_same_stats(duck / "stats", spark / "stats")


def test_float_sums_means_and_stds_are_bit_identical(session: Any, tmp_path: Path) -> None:
    """Magnitudes over nine decades, negative sums beyond 2**64 in fixed point, maxima
    that are powers of two or just below one, ties in time: equal bytes on both engines."""
    rng = np.random.default_rng(5)
    big = [1024.0, math.nextafter(1024.0, 0.0), math.nextafter(0.5, 0.0), -(2.0**40)]
    events = [
        {
            **event(f"s{k}", i // 2 / 60, float(rng.normal() * 10.0 ** rng.integers(-3, 6))),
            "qty": int(rng.integers(-5, 9)),
        }
        for k in range(4)
        for i in range(150)
    ]
    events += [event("s0", 1 + i / 7, value) for i, value in enumerate(big)]
    orders = [
        order(f"s{k}", i / 20, price=float(rng.normal() * 10.0 ** rng.integers(-2, 7)))
        for k in range(4)
        for i in range(100)
    ]
    orders += [order("s1", 0.5, price=value) for value in big]
    table = {
        "source": "events",
        "keys": ["shop"],
        "columns": ["amount"],
        "windows": [
            {"columns": ["amount", "qty"], "aggs": ["sum", "mean", "std"], "every": ["200m"]}
        ],
        "as_of": [
            {**ORDERS, "keys": ["store"], "name": f"price_{agg}", "agg": agg, "column": "price"}
            for agg in ("sum", "mean", "std")
        ]
        + [
            {
                **ORDERS,
                "keys": ["store"],
                "name": "price_next_1h",
                "agg": "mean",
                "column": "price",
                "window": "forward 1h",
            }
        ],
    }
    validated = write_validated(tmp_path / "validated", {"events": events, "orders": orders})
    params = make_params({"t": table})
    *_, duck, spark = both_engines(tmp_path, params, validated, session)
    assert_same_files(duck, spark, {})


def test_the_transform_stage_writes_the_same_outputs_on_spark(session: Any, tmp_path: Path) -> None:
    """``python -m pipelines.transform`` logic with ``transform.engine: spark`` in params."""
    from pipelines import transform

    validated = write_validated(tmp_path / "validated", combined_data([4]))
    outputs = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path / engine
        root.mkdir()
        params = load_repo_params()
        params["paths"] = {
            **{k: str(root / k) for k in params["paths"]},
            "validated": str(validated),
        }
        params["sources"] = SOURCES
        params["features"] = {n: FEATURES[n] for n in ("shop_stats", "order_log", "shop_norm")}
        params["transform"] = {"engine": engine, "spark": {"master": "local[1]"}}
        assert transform.main(["--params", str(write_params(root, params))]) == 0
        outputs[engine] = root
    duck, spark = outputs["duckdb"], outputs["spark"]
    norm = pq.read_table(duck / "features" / "shop_norm.parquet")
    assert_same_files(
        duck / "features", spark / "features", {"shop_norm": normalized_columns(norm)}
    )
    assert_same_stats(duck / "artifacts" / "normalization", spark / "artifacts" / "normalization")
    metrics = [json.loads((r / "metrics" / "transform.json").read_text()) for r in (duck, spark)]
    assert metrics[0] == metrics[1]


def test_sql_that_does_not_bind_on_spark_fails_naming_the_field(
    session: Any, tmp_path: Path
) -> None:
    validated = write_validated(tmp_path / "validated", random_data(0))
    base = {"source": "events", "keys": ["shop"], "columns": ["amount"]}
    cases = [
        # a DuckDB function Spark does not have
        ({"derive": {"j": "jaro_similarity(tag, 'x')"}}, r"features\.t\.derive\.j: engine spark"),
        # binds on both, but BIGINT on DuckDB and INT on Spark
        (
            {"derive": {"n": "length(tag)"}},
            r"features\.t\.derive\.n: is int on Spark but BIGINT on DuckDB",
        ),
    ]
    for extra, message in cases:
        params = spark_params(make_params({"t": {**base, **extra}}))
        with pytest.raises(ConfigError, match=message):
            write_feature_tables(params, validated, tmp_path / "o", tmp_path / "s", spark=session)
        assert not (tmp_path / "o" / "t.parquet").exists()
