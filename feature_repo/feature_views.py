"""Feature views over the declared feature tables; schemas follow params.yaml: features."""

from datetime import timedelta

import pandas as pd
from data_sources import (
    history_source,
    label_source,
    profile_source,
    sensor_source,
    tables,
)
from entities import machine
from feast import FeatureView, Field
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64

sensor_stats = FeatureView(
    name="sensor_stats",
    entities=[machine],
    ttl=timedelta(hours=3),
    schema=tables.schema("sensor_stats"),
    source=sensor_source,
    online=True,
    description="Latest hourly reading per machine with rolling and normalized statistics.",
)

machine_history = FeatureView(
    name="machine_history",
    entities=[machine],
    ttl=timedelta(hours=3),
    schema=tables.schema("machine_history"),
    source=history_source,
    online=True,
    description="Hours since the last maintenance and recent failure count.",
)

machine_profile = FeatureView(
    name="machine_profile",
    entities=[machine],
    ttl=timedelta(0),  # unlimited: static attributes
    schema=tables.schema("machine_profile"),
    source=profile_source,
    online=True,
    description="Static machine attributes from the registry.",
)

failure_labels = FeatureView(
    name="failure_labels",
    entities=[machine],
    ttl=timedelta(hours=1),
    schema=tables.schema("failure_labels"),
    source=label_source,
    online=False,
    description="Training labels (offline only: a label looks ahead, never served).",
)


# The trend reads only the rolling means of vibration and temperature: project the source to
# them (Feast copies every source feature per online call).
_trend_inputs = tables.names("sensor_stats", r"(vibration|temperature)_mean_\d+h")


@on_demand_feature_view(
    sources=[sensor_stats[_trend_inputs]],
    schema=[Field(name=n, dtype=Float64) for n in ("vibration_trend", "temperature_trend")],
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
