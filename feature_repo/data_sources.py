"""Offline sources: the transform stage's Parquet under params.yaml `paths.features`."""

from pathlib import Path

from feast import FileSource

from featureops.catalog import (
    CREATED,
    EVENT_TIMESTAMP,
    HISTORY_TABLE,
    LABEL_TABLE,
    PROFILE_TABLE,
    SENSOR_TABLE,
    params_for_feature_repo,
    source_path_for_feast,
)

_REPO = Path(__file__).resolve().parent
_PARAMS = params_for_feature_repo(_REPO)


def _source(table: str, description: str) -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=source_path_for_feast(_REPO, _PARAMS, table),
        timestamp_field=EVENT_TIMESTAMP,
        created_timestamp_column=CREATED,
        description=description,
    )


sensor_source = _source(SENSOR_TABLE, "Hourly sensor readings with rolling and normalized stats.")
history_source = _source(HISTORY_TABLE, "Maintenance and failure history on the sensor timeline.")
profile_source = _source(PROFILE_TABLE, "Machine registry: model and location from install.")
label_source = _source(LABEL_TABLE, "Labels: failure within the horizon after each reading.")
