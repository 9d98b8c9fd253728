"""Feature services: the exact, versioned feature sets models consume.

Never edit a released service in place: add `failure_model_v2` and move the model to it.
"""

from data_sources import tables
from feast import FeatureService
from feature_views import machine_history, machine_profile, sensor_stats, sensor_trends

failure_model_v1 = FeatureService(
    name="failure_model_v1",
    features=[
        sensor_stats[tables.names("sensor_stats", r".*_z")],
        machine_history,
        machine_profile[["model"]],
        sensor_trends,
    ],
    description="Predicts a failure in the next 24 h from normalized sensor statistics.",
    tags={"owner": "featureops", "label": "failure_next_24h"},
)
