"""The Spark session featureops uses when a feature_store.yaml configures Spark.

One place for the defaults and for "reuse the running session": the offline store
(:mod:`.offline_spark`) and the materialize stage's batch read (:mod:`.batch_spark`) share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Defaults for a session this module starts (a user's spark_conf overrides them).
SESSION_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
}


def spark_session(spark_conf: Mapping[str, str] | None = None) -> SparkSession:
    """The active SparkSession, or a new one from ``spark_conf`` over :data:`SESSION_DEFAULTS`.

    ``spark_conf`` is the ``offline_store.spark_conf`` (or ``batch_engine.spark_conf``) of a
    feature_store.yaml, e.g. ``{"spark.master": "local[2]"}``; an already running session is
    reused as it is (Feast's Spark offline store does the same).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder
    for key, value in {**SESSION_DEFAULTS, **(spark_conf or {})}.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()
