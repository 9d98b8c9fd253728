"""Feature views over the declared feature tables; schemas follow params.yaml: features."""

from datetime import timedelta

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

# TTLs follow the data's delivery: the demo's sensor, maintenance and failure drops are daily
# files known 24 h after their date (sources.*.created), so at any time the newest *known*
# reading is 1-24 h old. 48 h tolerates one late or missing drop; older values are stale
# (null in training frames "as known at", flagged by serving).
sensor_stats = FeatureView(
    name="sensor_stats",
    entities=[machine],
    ttl=timedelta(hours=48),
    schema=tables.schema("sensor_stats"),
    source=sensor_source,
    online=True,
    description="Latest hourly reading per machine with rolling and normalized statistics.",
)

machine_history = FeatureView(
    name="machine_history",
    entities=[machine],
    ttl=timedelta(hours=48),
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
    mode="python",
    description="Shortest-window minus longest-window mean: the same code offline and online.",
)
def sensor_trends(inputs: dict) -> dict:
    # Self-contained (Feast stores its source). Lists in, lists out; None stays None.
    import re

    out = {}
    for col in ("vibration", "temperature"):
        windows = sorted(
            int(m.group(1)) for name in inputs if (m := re.fullmatch(rf"{col}_mean_(\d+)h", name))
        )
        short = inputs[f"{col}_mean_{windows[0]}h"]
        long = inputs[f"{col}_mean_{windows[-1]}h"]
        out[f"{col}_trend"] = [
            None if a is None or b is None else float(a - b)
            for a, b in zip(short, long, strict=True)
        ]
    return out
