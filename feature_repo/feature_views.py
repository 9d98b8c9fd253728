"""Feature views over the transform outputs; column lists come from params.yaml."""

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
from data_sources import history_source, label_source, profile_source, sensor_source
from entities import machine
from feast import FeatureView, Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64, String

from featureops.catalog import (
    history_columns,
    label_column,
    normalized_columns,
    params_for_feature_repo,
    rolling_columns,
)

_PARAMS = params_for_feature_repo(Path(__file__).resolve().parent)
_TTL = _PARAMS["feast"]["ttl_hours"]


def _floats(names: list[str]) -> list[Field]:
    return [Field(name=n, dtype=Float64) for n in names]


_sensor_fields = (
    list(_PARAMS["transform"]["sensor_columns"])
    + rolling_columns(_PARAMS)
    + [f"{c}_{suffix}" for c in normalized_columns(_PARAMS) for suffix in ("z", "mm")]
)

sensor_stats = FeatureView(
    name="sensor_stats",
    entities=[machine],
    ttl=timedelta(hours=_TTL["sensor_stats"]),
    schema=_floats(_sensor_fields),
    source=sensor_source,
    online=True,
    description="Latest hourly reading per machine with rolling and normalized statistics.",
)

machine_history = FeatureView(
    name="machine_history",
    entities=[machine],
    ttl=timedelta(hours=_TTL["machine_history"]),
    schema=_floats(history_columns(_PARAMS)),
    source=history_source,
    online=True,
    description="Hours since the last maintenance and recent failure count.",
)

machine_profile = FeatureView(
    name="machine_profile",
    entities=[machine],
    ttl=timedelta(hours=_TTL["machine_profile"]),  # 0: unlimited
    schema=[Field(name="model", dtype=String), Field(name="location", dtype=String)],
    source=profile_source,
    online=True,
    description="Static machine attributes from the registry.",
)

failure_labels = FeatureView(
    name="failure_labels",
    entities=[machine],
    ttl=timedelta(hours=_TTL["failure_labels"]),
    schema=[Field(name=label_column(_PARAMS), dtype=Int64)],
    source=label_source,
    online=False,
    description="Training labels; never served online.",
)


# The trend needs only the rolling means of vibration and temperature: project the source
# to them (Feast copies every source feature per online call, ~8 ms with all 60 of them).
_trend_inputs = [
    c for c in rolling_columns(_PARAMS) if re.fullmatch(r"(vibration|temperature)_mean_\d+h", c)
]


@on_demand_feature_view(
    sources=[sensor_stats[_trend_inputs]],
    schema=_floats(["vibration_trend", "temperature_trend"]),
    mode="pandas",
    description="Shortest-window minus longest-window mean: the same code offline and online.",
)
def sensor_trends(inputs: pd.DataFrame) -> pd.DataFrame:
    # Self-contained (Feast serializes this function into the registry): windows are read
    # from the input column names, `<col>_mean_<w>h`.
    import re

    out = pd.DataFrame(index=inputs.index)
    for col in ("vibration", "temperature"):
        windows = sorted(
            int(m.group(1))
            for c in inputs.columns
            if (m := re.fullmatch(rf"{col}_mean_(\d+)h", c.split("__")[-1]))
        )
        short = next(c for c in inputs.columns if c.endswith(f"{col}_mean_{windows[0]}h"))
        long = next(c for c in inputs.columns if c.endswith(f"{col}_mean_{windows[-1]}h"))
        out[f"{col}_trend"] = (inputs[short] - inputs[long]).astype("float64")
    return out
