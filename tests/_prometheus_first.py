"""Prometheus storage for the test process; conftest imports this before anything else.

prometheus_client decides once per process, at its import, whether metric values live in
memory or in files under ``PROMETHEUS_MULTIPROC_DIR``, and importing ``feast.metrics`` sets
that variable (to a temp dir of the importing process). Importing both here, in that order,
then dropping the variables means: apps built in the test process count in their own
registries (no sums across tests), and every server a test starts makes its own directory
instead of inheriting one other servers already wrote counters to.
"""

import importlib
import os

# in this order (plain imports would be re-sorted by the linter):
importlib.import_module("prometheus_client")  # in-memory values in this process
importlib.import_module("feast.metrics")  # sets the variables, dropped below

for _var in ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR"):
    os.environ.pop(_var, None)
