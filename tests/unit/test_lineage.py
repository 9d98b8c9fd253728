"""Frame checksums: independent of row/column order and dtype spelling, sensitive to values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featureops.lineage import frame_sha256


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 500
    return pd.DataFrame(
        {
            "machine_id": rng.integers(1, 20, n),
            "event_timestamp": pd.Timestamp("2026-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10_000, n), unit="min"),
            "temperature_z": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "model": rng.choice(["A100", "B200", None], n),
            "failure_next_24h": rng.random(n) < 0.05,
        }
    )


def test_row_and_column_order_do_not_change_the_checksum(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1.0, random_state=1)[list(reversed(frame.columns))]
    assert frame_sha256(shuffled) == frame_sha256(frame)


def test_dtype_spelling_does_not_change_the_checksum(frame: pd.DataFrame) -> None:
    other = frame.astype({"machine_id": "Int64", "temperature_z": "Float64"})
    other["event_timestamp"] = other["event_timestamp"].dt.tz_convert("Europe/Berlin")
    other["event_timestamp"] = other["event_timestamp"].astype("datetime64[ns, Europe/Berlin]")
    assert frame_sha256(other) == frame_sha256(frame)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(temperature_z=f["temperature_z"].where(f.index != 3, 1e-300)),
        lambda f: f.assign(temperature_z=np.nextafter(f["temperature_z"], np.inf)),
        lambda f: f.assign(
            event_timestamp=f["event_timestamp"].where(
                f.index != 7, f["event_timestamp"] + pd.Timedelta(microseconds=1)
            )
        ),
        lambda f: f.assign(model=f["model"].where(f.index != 2, "A1000")),
        lambda f: f.assign(model=f["model"].mask(f.index == f["model"].first_valid_index())),
        lambda f: f.assign(machine_id=f["machine_id"].where(f.index != 0, 999)),
        lambda f: f.rename(columns={"model": "machine_model"}),
        lambda f: pd.concat([f, f.iloc[[0]]]),  # a duplicated row is a different frame
        lambda f: f.iloc[1:],
    ],
)
def test_any_change_of_value_name_or_row_count_changes_the_checksum(
    frame: pd.DataFrame, change
) -> None:
    assert frame_sha256(change(frame.copy())) != frame_sha256(frame)


def test_text_values_cannot_shift_into_each_other() -> None:
    a = pd.DataFrame({"s": ["ab", "c"]})
    b = pd.DataFrame({"s": ["a", "bc"]})
    assert frame_sha256(a) != frame_sha256(b)
