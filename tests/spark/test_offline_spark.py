"""The Spark point-in-time join equals the DuckDB one, row for row, on randomized cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from featureops import pit
from featureops.io import write_parquet
from featureops.store import offline_spark
from tests.unit.test_pit import entity, hours, random_case

pytestmark = pytest.mark.spark


def assert_frames_equal(spark_frame: pa.Table, duck_frame: pa.Table) -> None:
    """Same columns, types (string kinds normalized) and values (floats exact), row for row."""
    assert spark_frame.column_names == duck_frame.column_names
    assert spark_frame.num_rows == duck_frame.num_rows
    for name in duck_frame.column_names:
        a, b = spark_frame.column(name), duck_frame.column(name)
        if pa.types.is_large_string(a.type) or pa.types.is_large_string(b.type):
            a, b = a.cast(pa.string()), b.cast(pa.string())
        assert a.type == b.type, (name, a.type, b.type)
        assert a.combine_chunks().equals(b.combine_chunks()), (name, a, b)


@pytest.mark.parametrize("as_known_at", [False, True])
def test_randomized_cases_equal_duckdb(spark, tmp_path: Path, as_known_at: bool) -> None:
    rng = np.random.default_rng(20261202 + as_known_at)
    for case in range(15):  # ~1 s each on Spark; the unit test runs 80 on DuckDB
        case_dir = tmp_path / str(case)
        case_dir.mkdir()
        entities, views = random_case(rng, case_dir)
        specs = [s for s, _ in views]
        duck = pit.point_in_time_join(entities, specs, as_known_at=as_known_at, output="arrow")
        ours = offline_spark.point_in_time_join(
            spark, entities, specs, as_known_at=as_known_at, output="arrow"
        )
        assert isinstance(duck, pa.Table) and isinstance(ours, pa.Table)
        assert_frames_equal(ours, duck)


def test_hand_picked_boundaries_equal_duckdb(spark, tmp_path: Path) -> None:
    """TTL exactly reached vs 1 µs past, ties on ts (created decides) and full ties (last
    stored row), a backfilled row, an empty entity frame, Feast's regex-column setting on."""
    feats = pd.DataFrame(
        {
            "machine_id": [1, 1, 1, 1, 1, 2, 2],
            "event_timestamp": [
                hours(0),
                hours(2),
                hours(2),
                hours(5),
                hours(5),
                hours(1),
                hours(1),
            ],
            "created": [hours(0), hours(3), hours(9), hours(5), hours(5), hours(1), hours(1)],
            "x": [10.0, 20.0, 21.0, 50.0, 51.0, 7.0, 8.0],
        }
    )
    path = write_parquet(feats, tmp_path / "f.parquet")
    spec = pit.FeatureViewSpec(
        "v", str(path), ["machine_id"], "event_timestamp", ["x"], "created", ttl=7200
    )
    ents = entity((1, 4), (1, 4 + 1 / 3_600_000_000), (1, 5), (1, 3), (2, 3), (3, 1), (1, 4))
    spark.conf.set("spark.sql.parser.quotedRegexColumnNames", "true")  # as Feast leaves it
    try:
        for known in (False, True):
            duck = pit.point_in_time_join(ents, [spec], as_known_at=known, output="arrow")
            ours = offline_spark.point_in_time_join(
                spark, ents, [spec], as_known_at=known, output="arrow"
            )
            assert isinstance(duck, pa.Table) and isinstance(ours, pa.Table)
            assert_frames_equal(ours, duck)
            expected = [20.0 if known else 21.0, None, 51.0, 20.0 if known else 21.0, 8.0]
            assert ours.column("x").to_pylist()[:5] == expected
        empty = offline_spark.point_in_time_join(spark, entity(), [spec], output="arrow")
        assert isinstance(empty, pa.Table) and empty.num_rows == 0
        assert empty.column_names == ["machine_id", "event_timestamp", "x"]
    finally:
        spark.conf.unset("spark.sql.parser.quotedRegexColumnNames")
