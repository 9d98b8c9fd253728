"""Point-in-time joins against a plain-Python reference, on randomized and hand-picked data."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featureops.io import write_parquet
from featureops.pit import FeatureViewSpec, point_in_time_join

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def hours(h: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=h)


def _null(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT


def reference_join(
    entities: pd.DataFrame,
    views: list[tuple[FeatureViewSpec, pd.DataFrame]],
    as_known_at: bool,
) -> list[dict]:
    """DESIGN.md's semantics as loops; full ties go to the row stored last (``feats`` order)."""
    records = [(spec, feats.to_dict("records")) for spec, feats in views]
    out = []
    for ent in entities.to_dict("records"):
        row = dict(ent)
        ts = ent["event_timestamp"]
        for spec, rows in records:
            best = None
            for pos, f in enumerate(rows):
                if any(_null(ent[k]) or ent[k] != f[spec.source_key(k)] for k in spec.join_keys):
                    continue
                fts = f[spec.timestamp_column]
                if fts > ts or (spec.ttl_micros > 0 and fts < ts - spec.ttl):
                    continue
                created = f[spec.created_column] if spec.created_column else None
                if as_known_at and not _null(created) and created > ts:
                    continue
                rank = (fts, 0 if _null(created) else 1, created if not _null(created) else 0, pos)
                if best is None or rank > best[0]:
                    best = (rank, f)
            for c in spec.features:
                row[spec.output_name(c)] = None if best is None else best[1][c]
        out.append(row)
    return out


def assert_same(result: pd.DataFrame, expected: list[dict], columns: list[str]) -> None:
    assert len(result) == len(expected)
    for i, exp in enumerate(expected):
        for c in columns:
            a, b = result[c].iloc[i], exp[c]
            if _null(b):
                assert pd.isna(a), (i, c, a, b)
            else:
                assert a == b, (i, c, a, b)


def _source(kind: str, feats: pd.DataFrame, tmp: Path, name: str) -> Any:
    """The same rows as a Parquet file, a list of files, an Arrow table, a relation, ns file."""
    if kind == "file":
        return str(write_parquet(feats, tmp / f"{name}.parquet"))
    if kind == "files":
        half = len(feats) // 2
        return [
            str(write_parquet(feats.iloc[:half], tmp / f"{name}_a.parquet")),
            str(write_parquet(feats.iloc[half:], tmp / f"{name}_b.parquet")),
        ]
    if kind == "ns":  # nanosecond timestamps, as pandas writes them by default
        path = tmp / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(feats, preserve_index=False), path)
        return str(path)
    table = pa.Table.from_pandas(feats, preserve_index=False)
    if kind == "arrow":
        return table
    return duckdb.connect().from_arrow(table)


def random_case(rng: np.random.Generator, tmp: Path) -> tuple[pd.DataFrame, list]:
    n_ent = int(rng.integers(1, 5))
    n = int(rng.integers(1, 30))
    machine = pd.array(rng.integers(0, n_ent + 2, n), dtype="Int64")  # some have no data
    machine[rng.random(n) < 0.1] = pd.NA
    entities = pd.DataFrame(
        {
            "machine_id": machine,
            "site": rng.integers(0, 2, n),
            "event_timestamp": [hours(int(h)) for h in rng.integers(0, 24, n)],
            "label": rng.integers(0, 2, n),
        }
    )
    if n > 2:  # duplicate entity rows are kept
        entities = pd.concat([entities, entities.iloc[[0, 0, 1]]], ignore_index=True)
    views = []
    for v in range(int(rng.integers(1, 4))):
        m = int(rng.integers(0, 50))
        two_keys = bool(rng.random() < 0.4)
        feats = pd.DataFrame(
            {
                "mid": rng.integers(0, n_ent, m),
                "site": rng.integers(0, 2, m),
                "ts": pd.to_datetime([hours(int(h)) for h in rng.integers(0, 24, m)], utc=True),
                "created": pd.to_datetime(
                    [hours(int(h)) for h in rng.integers(0, 30, m)], utc=True
                ),
                "a": rng.integers(0, 4, m).astype(float),  # coarse: full ties are visible
                "b": rng.normal(size=m).round(2),
            }
        )
        if m:
            feats.loc[rng.random(m) < 0.15, "a"] = np.nan
            feats.loc[rng.random(m) < 0.1, "created"] = pd.NaT
            dup = feats.sample(n=min(m, 5), random_state=int(rng.integers(1 << 30)))
            dup = dup.assign(b=dup["b"] + 100)  # same (key, ts), maybe same created
            feats = pd.concat([feats, dup], ignore_index=True)
        kind = str(rng.choice(["file", "files", "ns", "arrow", "relation"]))
        spec = FeatureViewSpec(
            name=f"v{v}",
            source=_source(kind, feats, tmp, f"v{v}"),
            join_keys=["machine_id", "site"] if two_keys else ["machine_id"],
            timestamp_column="ts",
            features=["a", "b"],
            created_column="created" if rng.random() < 0.85 else None,
            ttl=[0, None, 3600, timedelta(hours=3), timedelta(hours=6)][int(rng.integers(0, 5))],
            key_map={"machine_id": "mid"},
            prefix=f"v{v}_",
        )
        views.append((spec, feats))
    return entities, views


@pytest.mark.parametrize("as_known_at", [False, True])
def test_randomized_against_reference(tmp_path: Path, as_known_at: bool) -> None:
    rng = np.random.default_rng(20261123 + as_known_at)
    for case in range(80):
        case_dir = tmp_path / str(case)
        case_dir.mkdir()
        entities, views = random_case(rng, case_dir)
        specs = [s for s, _ in views]
        result = point_in_time_join(entities, specs, as_known_at=as_known_at)
        expected = reference_join(entities, views, as_known_at)
        columns = [s.output_name(c) for s in specs for c in s.features]
        assert list(result.columns) == [*entities.columns, *columns]
        assert len(result) == len(entities)
        assert_same(result, expected, columns)
        assert result["label"].tolist() == entities["label"].tolist()
        assert result["event_timestamp"].tolist() == entities["event_timestamp"].tolist()


# ----------------------------------------------------------------------------- hand-picked


@pytest.fixture
def one_view(tmp_path: Path):
    feats = pd.DataFrame(
        {
            "machine_id": [1, 1, 1, 1, 2],
            "event_timestamp": [hours(0), hours(2), hours(2), hours(5), hours(1)],
            "created": [hours(0), hours(3), hours(9), hours(5), hours(1)],
            "x": [10.0, 20.0, 21.0, 50.0, 7.0],
        }
    )
    write_parquet(feats, tmp_path / "f.parquet")

    def spec(ttl_h: float = 0, **kw: Any) -> FeatureViewSpec:
        return FeatureViewSpec(
            name="v",
            source=str(tmp_path / "f.parquet"),
            join_keys=["machine_id"],
            timestamp_column="event_timestamp",
            created_column="created",
            features=["x"],
            ttl=timedelta(hours=ttl_h),
            **kw,
        )

    return spec


def entity(*rows: tuple[int, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"machine_id": [r[0] for r in rows], "event_timestamp": [hours(r[1]) for r in rows]}
    )


def test_ttl_window_is_inclusive_at_both_ends(one_view) -> None:
    ents = entity((1, 4), (1, 4 + 1 / 3_600_000_000), (1, 5))
    out = point_in_time_join(ents, [one_view(ttl_h=2)])
    # ts=4: the row at 2 is exactly TTL old -> kept; 1 µs later: too old -> null;
    # ts=5: the row at exactly ts -> kept
    assert out["x"].iloc[0] == 21.0
    assert pd.isna(out["x"].iloc[1])
    assert out["x"].iloc[2] == 50.0


def test_ttl_in_seconds_and_as_known_at_window(one_view) -> None:
    out = point_in_time_join(
        entity((1, 4)),
        [
            one_view(ttl_h=0).__class__(
                "v", one_view().source, ["machine_id"], "event_timestamp", ["x"], "created", 7200
            )
        ],
        as_known_at=True,
    )
    assert out["x"].iloc[0] == 20.0  # created-9 row unknown at 4; the row at 2 is exactly 2 h old


def test_tie_on_event_time_is_broken_by_created(one_view) -> None:
    out = point_in_time_join(entity((1, 3)), [one_view()])
    assert out["x"].iloc[0] == 21.0  # created 9 beats created 3


def test_full_tie_goes_to_the_last_stored_row(tmp_path: Path) -> None:
    feats = pd.DataFrame(
        {
            "machine_id": [1, 1, 1],
            "event_timestamp": [hours(1)] * 3,
            "created": [hours(1)] * 3,
            "x": [3.0, 1.0, 2.0],
        }
    )
    path = write_parquet(feats, tmp_path / "f.parquet")
    spec = FeatureViewSpec("v", str(path), ["machine_id"], "event_timestamp", ["x"], "created")
    for _ in range(3):
        assert point_in_time_join(entity((1, 2)), [spec])["x"].iloc[0] == 2.0


def test_as_known_at_excludes_backfilled_rows(one_view) -> None:
    ents = entity((1, 3), (1, 4.5), (1, 9))
    out = point_in_time_join(ents, [one_view()], as_known_at=True)
    assert list(out["x"]) == [20.0, 20.0, 50.0]  # the created-9 row was unknown before 9
    assert list(point_in_time_join(ents, [one_view()])["x"]) == [21.0, 21.0, 50.0]


def test_ttl_zero_is_unlimited_and_no_match_gives_null(one_view) -> None:
    out = point_in_time_join(entity((1, 1000), (3, 1000), (2, 0.5)), [one_view(0)])
    assert out["x"].iloc[0] == 50.0
    assert pd.isna(out["x"].iloc[1]) and pd.isna(out["x"].iloc[2])


def test_order_and_duplicates_are_preserved(one_view) -> None:
    ents = entity((2, 3), (1, 0), (2, 3), (1, 5))
    ents.index = [10, 3, 7, 1]
    out = point_in_time_join(ents, [one_view()])
    assert list(out["machine_id"]) == [2, 1, 2, 1]
    assert list(out["x"]) == [7.0, 10.0, 7.0, 50.0]


def test_null_feature_value_on_latest_row_stays_null(tmp_path: Path) -> None:
    feats = pd.DataFrame(
        {"machine_id": [1, 1], "event_timestamp": [hours(0), hours(1)], "x": [5.0, None]}
    )
    path = write_parquet(feats, tmp_path / "f.parquet")
    spec = FeatureViewSpec("v", str(path), ["machine_id"], "event_timestamp", ["x"])
    assert pd.isna(point_in_time_join(entity((1, 2)), [spec])["x"].iloc[0])


def test_empty_source_and_empty_entity_frame(tmp_path: Path, one_view) -> None:
    empty = pd.DataFrame(
        {
            "machine_id": pd.Series([], dtype="int64"),
            "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
            "x": pd.Series([], dtype="float64"),
        }
    )
    path = write_parquet(empty, tmp_path / "empty.parquet")
    spec = FeatureViewSpec("e", str(path), ["machine_id"], "event_timestamp", ["x"])
    out = point_in_time_join(entity((1, 1), (2, 2)), [spec])
    assert len(out) == 2 and out["x"].isna().all()
    table = point_in_time_join(entity(), [one_view()], output="arrow")
    assert table.num_rows == 0
    assert table.column_names == ["machine_id", "event_timestamp", "x"]
    assert table.schema.field("x").type == pa.float64()


def test_entity_parquet_input_and_arrow_output(tmp_path: Path, one_view) -> None:
    path = write_parquet(entity((1, 5), (2, 3)), tmp_path / "entities.parquet")
    table = point_in_time_join(path, [one_view(prefix="v__")], output="arrow")
    assert isinstance(table, pa.Table)
    assert table.column("v__x").to_pylist() == [50.0, 7.0]
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")


def test_naive_timestamps_are_rejected(one_view) -> None:
    ents = entity((1, 1))
    ents["event_timestamp"] = ents["event_timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-naive"):
        point_in_time_join(ents, [one_view()])
    ents["event_timestamp"] = ents["event_timestamp"].astype(str)
    with pytest.raises(ValueError, match="timezone-aware"):
        point_in_time_join(ents, [one_view()])


def test_non_utc_zones_are_converted(one_view) -> None:
    ents = entity((1, 5), (2, 3))
    ents["event_timestamp"] = ents["event_timestamp"].dt.tz_convert("Asia/Tokyo")
    out = point_in_time_join(ents, [one_view()])
    assert list(out["x"]) == [50.0, 7.0]
    assert str(out["event_timestamp"].dtype) == "datetime64[us, UTC]"
    mixed = entity((1, 5), (2, 3)).astype({"event_timestamp": object})
    mixed.loc[0, "event_timestamp"] = hours(5).tz_convert("America/New_York")
    assert list(point_in_time_join(mixed, [one_view()])["x"]) == [50.0, 7.0]


def test_missing_columns_and_collisions_are_clear_errors(one_view) -> None:
    with pytest.raises(ValueError, match="lacks join key 'machine_id'"):
        point_in_time_join(entity((1, 1)).rename(columns={"machine_id": "m"}), [one_view()])
    with pytest.raises(ValueError, match="no 'event_timestamp' column"):
        point_in_time_join(entity((1, 1)).rename(columns={"event_timestamp": "t"}), [one_view()])
    with pytest.raises(ValueError, match=r"source lacks column\(s\) \['y'\]"):
        point_in_time_join(
            entity((1, 1)),
            [
                one_view().__class__(
                    "v", one_view().source, ["machine_id"], "event_timestamp", ["y"]
                )
            ],
        )
    with pytest.raises(ValueError, match="collides"):
        point_in_time_join(entity((1, 1)).assign(x=1.0), [one_view()])
    with pytest.raises(ValueError, match="collides"):
        point_in_time_join(entity((1, 1)), [one_view(), one_view()])
    out = point_in_time_join(entity((1, 1)), [one_view(), one_view(output_names={"x": "x2"})])
    assert list(out.columns) == ["machine_id", "event_timestamp", "x", "x2"]
