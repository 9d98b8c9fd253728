"""Feature services: the exact, versioned feature sets models consume.

Never edit a released service in place: add `failure_model_v2` and move the model to it.
"""

from pathlib import Path

from feast import FeatureService
from feature_views import machine_history, machine_profile, sensor_stats, sensor_trends

from featureops.catalog import normalized_columns, params_for_feature_repo

_PARAMS = params_for_feature_repo(Path(__file__).resolve().parent)

failure_model_v1 = FeatureService(
    name="failure_model_v1",
    features=[
        sensor_stats[[f"{c}_z" for c in normalized_columns(_PARAMS)]],
        machine_history,
        machine_profile[["model"]],
        sensor_trends,
    ],
    description="Predicts a failure in the next 24 h from normalized sensor statistics.",
    tags={"owner": "featureops", "label": "failure_labels"},
)
