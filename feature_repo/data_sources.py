"""Offline sources: the transform stage's Parquet, one per table declared in params.yaml."""

from featureops.feast_defs import FeatureTables

tables = FeatureTables.for_repo(__file__)

sensor_source = tables.source("sensor_stats", "Hourly readings with rolling and normalized stats.")
history_source = tables.source("machine_history", "Maintenance and failure history per reading.")
profile_source = tables.source("machine_profile", "Machine registry: model and location.")
label_source = tables.source("failure_labels", "Labels: a failure within 24 h of each reading.")
