"""One Spark session (local[2]) shared by every Spark test: starting Spark costs seconds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Passed to Spark as given and used by the Feast repos these tests write (spark_conf):
# the session below is the active one, so Feast's offline store and compute engine reuse it.
SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "1g",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    from pyspark.sql import SparkSession

    # Python workers (Feast's compute engine writes the online store from them) run this venv
    os.environ["PYSPARK_PYTHON"] = sys.executable
    builder = SparkSession.builder.appName("featureops-tests")
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
