"""Entity frames are checked against the join keys' Feast types (never silently cast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featureops.frames import FrameError, coerce_entity_keys


def test_integer_and_string_keys_pass_and_integral_floats_become_integers() -> None:
    df = pd.DataFrame({"machine_id": [1.0, 2.0], "site": ["007", "A"], "x": [0.5, 1.5]})
    out = coerce_entity_keys(df, {"machine_id": "Int64", "site": "String"})
    assert out["machine_id"].dtype == np.int64 and list(out["machine_id"]) == [1, 2]
    assert list(out["site"]) == ["007", "A"]
    assert list(out["x"]) == [0.5, 1.5]  # not a key: untouched


@pytest.mark.parametrize(
    ("values", "dtype", "message"),
    [
        ([7.5], "Int64", "'machine_id' is Int64, got 7.5"),
        (["abc"], "Int64", "'machine_id' is Int64, got 'abc'"),
        ([1, None], "Int64", "null"),
        ([42], "String", "'machine_id' is String, got 42"),
    ],
)
def test_mismatches_name_the_column(values: list, dtype: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        coerce_entity_keys(pd.DataFrame({"machine_id": values}), {"machine_id": dtype})
