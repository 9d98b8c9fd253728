"""Prediction service: online store -> the model's feature service -> model -> prediction.

Each worker process resolves the production model's feature service once (and again, off
the request path, when the model, the registry or the store file changes), reads feature
values straight from the online store (:mod:`featureops.online`), applies the fitted
model with numpy (:mod:`.model`) and queues the served vectors for a background log
writer. An entity with missing or stale features gets an explicit status and no
prediction, never a silent guess.

``create_app(params, root)`` builds one app (tests, one process); ``run(...)`` serves it
with several worker processes; ``python -m featureops.serving --workers 2`` runs that.
"""

from featureops.serving.app import create_app, run
from featureops.serving.settings import ServingSettings

__all__ = ["ServingSettings", "create_app", "run"]
