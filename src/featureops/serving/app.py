"""The HTTP service: ``POST /predict``, ``GET /health``, ``GET /metrics``.

``POST /predict`` is answered by a thin ASGI layer (:class:`.metrics.PredictPath`) in
front of FastAPI: it enforces the body limit, counts every status, and calls one
synchronous function that does the (sub-millisecond) work on the event loop: no
thread-pool hop, no routing or dependency solving, no pydantic validation of bodies
(see :mod:`.requests`), no DataFrame; JSON by orjson. FastAPI still declares the route,
so the OpenAPI schema documents it, and serves ``/health``, ``/metrics`` and the docs
(``/docs``, ``/redoc``: their assets are served by the service too, see :mod:`.docs`).
Feast is never called on the request path: its registry is resolved once per state
(see :mod:`.state`).
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from featureops.config import load_params
from featureops.feature_log import FeatureLogger
from featureops.serving.docs import add_redoc
from featureops.serving.metrics import CONTENT_TYPE_LATEST, Metrics, PredictPath
from featureops.serving.requests import RequestError, loads, parse_entities
from featureops.serving.settings import ServingSettings
from featureops.serving.state import StateHolder

log = logging.getLogger(__name__)

PARAMS_ENV = "FEATUREOPS_SERVING_PARAMS"
ROOT_ENV = "FEATUREOPS_SERVING_ROOT"


class PredictRequest(BaseModel):
    """Feast's feature-server shape: every join key of the model's service, equal lengths."""

    entities: dict[str, list[int | str]] = Field(
        ...,
        description="join key -> values, e.g. {'customer_id': ['C001', 'C002']}",
        examples=[{"customer_id": ["C001", "C002"]}],
    )


class Prediction(BaseModel):
    entity: dict[str, Any] = Field(description="the entity's join-key values")
    status: str = Field(description="ok | missing_features | stale_features")
    probability: float | None
    label: int | None
    missing_features: list[str]
    stale_features: list[str]
    features: dict[str, Any]


class PredictResponse(BaseModel):
    model_version: str
    feature_service: str
    feature_time: datetime
    threshold: float
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    detail: str


def create_app(
    params_path: str | Path = "params.yaml", root: str | Path = ".", parent_pid: int | None = None
) -> FastAPI:
    """Build the app; the production model and Feast are loaded at start-up (lifespan).

    ``parent_pid``: a worker's supervisor; the worker shuts down (flushing its log) if
    that process dies instead of being left running alone.
    """
    settings = ServingSettings.from_params(load_params(params_path), root)
    metrics = Metrics(settings.metrics_dir / "monitor.json")
    ctx: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder = StateHolder(settings)
        holder.on_error = lambda exc: metrics.refresh_errors.inc()
        logger = FeatureLogger(
            settings.feature_log, settings.flush_rows, settings.flush_seconds, process=True
        ).start()
        api_key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        ctx.update(holder=holder, logger=logger, api_key=api_key or None)
        holder.start()
        if parent_pid is not None:
            _watch_parent(parent_pid)
        # Feast's registry, the model and the imports are long-lived: keep the cyclic GC
        # from scanning them again and again (its full passes are the latency tail)
        gc.collect()
        gc.freeze()
        # The log writer and refresher threads hold the GIL in bursts (Arrow conversion):
        # make them hand it back to the event loop after 0.5 ms, not Python's default 5 ms
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0005))
        try:
            yield
        finally:
            holder.stop()
            logger.close()  # durable: whatever was served is written before exit
            gc.unfreeze()
            sys.setswitchinterval(switch_interval)

    # /docs (Swagger UI) and /redoc load their scripts and styles from the service itself,
    # not from a CDN (see .docs)
    app = FastAPIOffline(
        title="featureops prediction service",
        description="Predictions from the online feature store through the model's feature service.",
        lifespan=lifespan,
        redoc_url=None,
        # no badge from validator.swagger.io (Swagger UI shows one for non-local hosts)
        swagger_ui_parameters={"validatorUrl": None},
    )
    add_redoc(app)
    app.state.metrics = metrics
    app.state.featureops = ctx

    @app.get("/health")
    def health() -> dict[str, Any]:
        state = ctx["holder"].state
        return {
            "status": "ok",
            "model_version": state.version,
            "feature_service": state.service,
            "join_keys": state.join_keys,
            "compiled_model": state.model.compiled,
            "refresh_error": ctx["holder"].last_error,
            "pid": os.getpid(),
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": text}
        for code, text in {
            400: "too many entities (serving.max_ids)",
            401: "missing or wrong X-API-Key (when serving.api_key_env is set)",
            404: "entities unknown to the online store",
            413: "body over serving.max_body_bytes",
            422: "malformed body, missing/unknown join key or a value of the wrong type",
        }.items()
    }

    @app.post(
        "/predict",
        response_model=None,
        responses={200: {"model": PredictResponse}, **errors},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            },
            "parameters": [
                {
                    "name": "X-API-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                }
            ],
        },
    )
    async def predict(request: Request) -> Response:
        # Requests are answered by the PredictPath ASGI layer below without reaching this
        # route; it stays for the OpenAPI schema and as the same answer without that layer.
        status, content = answer(request.headers.get("x-api-key"), await request.body())
        return Response(content, status_code=status, media_type="application/json")

    def answer(api_key: str | None, body: bytes) -> tuple[int, bytes]:
        """The whole /predict: (status, JSON body). Sync: it never waits on anything."""
        expected = ctx["api_key"]
        if expected is not None and not hmac.compare_digest(
            (api_key or "").encode(), expected.encode()
        ):
            return 401, b'{"detail":"missing or wrong X-API-Key"}'
        state = ctx["holder"].state  # one snapshot for the whole request
        now = settings.now()
        try:
            entities, n = parse_entities(loads(body), state.join_keys, settings.max_ids)
            predictions, batch, counts = state.predict(entities, n, now)
        except RequestError as exc:
            return exc.status, orjson.dumps({"detail": exc.detail})
        logger: FeatureLogger = ctx["logger"]
        dropped = logger.dropped_rows
        logger.log(batch)
        if logger.dropped_rows != dropped:
            metrics.log_dropped.inc(logger.dropped_rows - dropped)
        if counts["missing"]:
            metrics.missing_kind.inc(counts["missing"])
        if counts["stale"]:
            metrics.stale_kind.inc(counts["stale"])
        observe = metrics.probability.observe
        for p in predictions:
            if p["probability"] is not None:
                observe(p["probability"])
        return 200, orjson.dumps(
            {
                "model_version": state.version,
                "feature_service": state.service,
                "feature_time": now,
                "threshold": state.threshold,
                "predictions": predictions,
            }
        )

    app.add_middleware(
        PredictPath, metrics=metrics, max_body=settings.max_body_bytes, answer=answer
    )
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process started by :func:`run` (uvicorn factory)."""
    return create_app(
        os.environ[PARAMS_ENV], os.environ.get(ROOT_ENV, "."), parent_pid=os.getppid()
    )


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        log.warning("supervisor %d is gone: shutting down worker %d", parent_pid, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="featureops-parent-watch", daemon=True).start()


MULTIPROC_DIR_VARS = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


def _users_multiproc_dir() -> bool:
    """Whether ``PROMETHEUS_MULTIPROC_DIR`` is a directory the user chose.

    Importing ``feast.metrics`` sets it to a ``feast_metrics_*`` temp dir, which a server
    started from another process that imported Feast would inherit and share with it.
    """
    current = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not current:
        return False
    return not Path(current).name.startswith("feast_metrics_")


def run(
    params_path: str | Path = "params.yaml",
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    root: str | Path = ".",
) -> None:
    """Serve with ``workers`` processes (default ``serving.workers``), each with its own
    state, connection and feature-log writer; SIGTERM drains requests and flushes logs."""
    import shutil

    import uvicorn

    settings = ServingSettings.from_params(load_params(params_path), root)
    workers = int(workers or settings.workers)
    os.environ[PARAMS_ENV] = str(Path(params_path).resolve())
    os.environ[ROOT_ENV] = str(Path(root).resolve())
    own_dir = None
    if workers > 1 and not _users_multiproc_dir():
        # the workers' counters go to files in a directory of this server only
        own_dir = tempfile.mkdtemp(prefix="featureops-metrics-")
        for var in MULTIPROC_DIR_VARS:
            os.environ[var] = own_dir
    try:
        uvicorn.run(
            "featureops.serving.app:app_from_env",
            factory=True,
            host=host or settings.host,
            port=int(port or settings.port),
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="info",
            backlog=2048,
            timeout_graceful_shutdown=30,
        )
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
