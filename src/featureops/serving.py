"""Prediction service: online store -> the model's feature service -> model -> prediction.

One long-lived process pays Feast's start-up once. Features come from the same feature
service the model was trained on (recorded in its manifest), including the on-demand views,
which Feast computes with the same code as offline. An entity with missing or stale features
gets an explicit status and no prediction, never a silent guess.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from featureops import catalog
from featureops.config import Paths, load_params
from featureops.feature_log import FeatureLogger
from featureops.registry import load_production
from featureops.training import predict_proba


class PredictRequest(BaseModel):
    machine_ids: list[int] = Field(..., min_length=1, description="machines to score")


class MachinePrediction(BaseModel):
    machine_id: int
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
    predictions: list[MachinePrediction]


@dataclass
class ServingSettings:
    """What the service needs, from params.yaml ``serving`` and ``paths``."""

    feature_repo: str
    registry: Path
    feature_log: Path
    max_ids: int
    reference_time: datetime | None
    api_key_env: str | None
    flush_rows: int
    flush_seconds: float

    @classmethod
    def from_params(cls, params: dict[str, Any], root: str | Path = ".") -> ServingSettings:
        paths = Paths.from_params(params, root)
        cfg = params.get("serving", {})
        ref = cfg.get("reference_time")
        return cls(
            feature_repo=str(Path(root) / params["feast"]["repo"]),
            registry=paths.registry,
            feature_log=paths.feature_log,
            max_ids=int(cfg.get("max_ids", 100)),
            reference_time=pd.Timestamp(ref).to_pydatetime() if ref else None,
            api_key_env=cfg.get("api_key_env"),
            flush_rows=int(cfg.get("log_flush_rows", 1000)),
            flush_seconds=float(cfg.get("log_flush_seconds", 30)),
        )


class Metrics:
    """Prometheus metrics of one service instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "featureops_requests", "Prediction requests", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "featureops_request_latency_seconds",
            "Latency of /predict",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.probability = Histogram(
            "featureops_prediction_probability",
            "Predicted failure probability",
            registry=self.registry,
            buckets=tuple(i / 10 for i in range(1, 11)),
        )
        self.missing = Counter(
            "featureops_missing_features",
            "Feature values missing or stale at serving",
            ["kind"],
            registry=self.registry,
        )
        self.drift = Gauge(
            "featureops_feature_drift",
            "1 if the last drift report flagged the feature",
            ["feature"],
            registry=self.registry,
        )


class Predictor:
    """Reads features online and applies the production model."""

    def __init__(self, settings: ServingSettings) -> None:
        from feast import FeatureStore

        self.settings = settings
        self.model, self.manifest = load_production(settings.registry)
        self.store = FeatureStore(repo_path=settings.feature_repo)
        self.service_name = self.manifest["feature_service"]
        self.service = self.store.get_feature_service(self.service_name)
        self.threshold = float(self.manifest["threshold"])
        self.ttl: dict[str, float] = {}
        for proj in self.service.feature_view_projections:
            try:
                view = self.store.get_feature_view(proj.name)
            except Exception:  # on-demand views: derived, checked through their sources
                continue
            for f in proj.features:
                self.ttl[f.name] = view.ttl.total_seconds() if view.ttl else 0.0
        self.inputs = list(self.manifest["features"])

    def now(self) -> datetime:
        return self.settings.reference_time or datetime.now(UTC)

    def online_features(self, machine_ids: list[int]) -> pd.DataFrame:
        response = self.store.get_online_features(
            features=self.service,
            entity_rows=[{catalog.ENTITY_KEY: m} for m in machine_ids],
        )
        return pd.DataFrame(response.to_dict(include_event_timestamps=True))

    def predict(self, machine_ids: list[int]) -> tuple[datetime, list[dict[str, Any]]]:
        now = self.now()
        frame = self.online_features(machine_ids)
        stored = [c for c in self.ttl if c in frame.columns]
        unknown = [m for i, m in enumerate(machine_ids) if frame.loc[i, stored].isna().all()]
        if unknown:
            raise HTTPException(status_code=404, detail=f"unknown machine ids: {unknown}")
        results = []
        for i, machine_id in enumerate(machine_ids):
            row = frame.iloc[i]
            missing = [c for c in self.inputs if pd.isna(row.get(c))]
            stale = [
                c
                for c, ttl in self.ttl.items()
                if ttl > 0 and c not in missing and row.get(f"{c}__ts", 0) < now.timestamp() - ttl
            ]
            features = {c: (None if pd.isna(row.get(c)) else row.get(c)) for c in self.inputs}
            status = "missing_features" if missing else "stale_features" if stale else "ok"
            results.append(
                {
                    "machine_id": int(machine_id),
                    "status": status,
                    "missing_features": missing,
                    "stale_features": stale,
                    "features": features,
                    "probability": None,
                    "label": None,
                }
            )
        ok = [r for r in results if r["status"] == "ok"]
        if ok:
            inputs = pd.DataFrame([r["features"] for r in ok], columns=self.inputs)
            for r, p in zip(ok, predict_proba(self.model, inputs), strict=True):
                r["probability"] = float(p)
                r["label"] = int(p >= self.threshold)
        return now, results


def update_drift_gauges(metrics: Metrics, monitor_file: Path) -> None:
    """Expose the last monitoring result (metrics/monitor.json) as gauges."""
    if not monitor_file.exists():
        return
    import json

    result = json.loads(monitor_file.read_text())
    for feature, stats in result.get("features", {}).items():
        metrics.drift.labels(feature=feature).set(1.0 if stats.get("drift") else 0.0)
    metrics.drift.labels(feature="__prediction__").set(
        1.0 if result.get("prediction_drift") else 0.0
    )
    metrics.drift.labels(feature="__alert__").set(1.0 if result.get("alert") else 0.0)


def create_app(params_path: str | Path = "params.yaml", root: str | Path = ".") -> FastAPI:
    """Build the FastAPI app (loads the production model and opens Feast at start-up)."""
    settings = ServingSettings.from_params(load_params(params_path), root)
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["predictor"] = Predictor(settings)
        state["logger"] = FeatureLogger(
            settings.feature_log, settings.flush_rows, settings.flush_seconds
        )
        yield
        state["logger"].flush()

    app = FastAPI(
        title="featureops prediction service",
        description="Failure-in-24h predictions from the online feature store.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.featureops = state

    def check_key(x_api_key: str | None = Header(default=None)) -> None:
        expected = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        if expected and x_api_key != expected:
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")

    @app.get("/health")
    def health() -> dict[str, Any]:
        predictor: Predictor = state["predictor"]
        return {
            "status": "ok",
            "model_version": predictor.manifest.get("version"),
            "feature_service": predictor.service_name,
        }

    monitor_file = Paths.from_params(load_params(params_path), root).metrics / "monitor.json"

    @app.get("/metrics")
    def prometheus() -> Response:
        update_drift_gauges(metrics, monitor_file)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict", response_model=PredictResponse, dependencies=[Depends(check_key)])
    def predict(body: PredictRequest, request: Request) -> dict[str, Any]:
        started = time.perf_counter()
        predictor: Predictor = state["predictor"]
        if len(body.machine_ids) > settings.max_ids:
            metrics.requests.labels(status="400").inc()
            raise HTTPException(
                status_code=400,
                detail=f"too many machine ids: {len(body.machine_ids)} > {settings.max_ids}",
            )
        try:
            feature_time, results = predictor.predict(body.machine_ids)
        except HTTPException as exc:
            metrics.requests.labels(status=str(exc.status_code)).inc()
            raise
        request_id = str(uuid.uuid4())
        log_rows = []
        for r in results:
            metrics.missing.labels(kind="missing").inc(len(r["missing_features"]))
            metrics.missing.labels(kind="stale").inc(len(r["stale_features"]))
            if r["probability"] is not None:
                metrics.probability.observe(r["probability"])
            log_rows.append(
                {
                    "request_id": request_id,
                    "feature_time": feature_time,
                    "served_at": datetime.now(UTC),
                    "model_version": predictor.manifest.get("version"),
                    "feature_service": predictor.service_name,
                    catalog.ENTITY_KEY: r["machine_id"],
                    "status": r["status"],
                    "probability": r["probability"],
                    **r["features"],
                }
            )
        state["logger"].log(log_rows)
        metrics.requests.labels(status="200").inc()
        metrics.latency.observe(time.perf_counter() - started)
        return {
            "model_version": predictor.manifest.get("version"),
            "feature_service": predictor.service_name,
            "feature_time": feature_time,
            "threshold": predictor.threshold,
            "predictions": results,
        }

    return app
