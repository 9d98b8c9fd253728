"""Prometheus metrics of the service, and the ASGI guard that counts every response.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` is set by
:func:`featureops.serving.run` before the workers start: each worker then writes its own
counters to files there (nothing shared in memory) and ``/metrics`` from any worker sums
them all. In one process (tests, one worker) metrics live in the app's own registry.
(Importing ``feast.metrics`` sets that variable too, to a temp dir of Feast's: the mode
is read from prometheus_client itself, which decides once, at its import.)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "PredictPath"]

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class DriftCollector:
    """The last monitoring result (``metrics/monitor.json``) as gauges, read at scrape time."""

    def __init__(self, monitor_file: Path) -> None:
        self.monitor_file = monitor_file

    def collect(self):
        gauge = GaugeMetricFamily(
            "featureops_feature_drift",
            "1 if the last drift report flagged the feature",
            labels=["feature"],
        )
        try:
            result = json.loads(self.monitor_file.read_text())
        except (OSError, ValueError):
            result = None
        if isinstance(result, dict):
            for feature, stats in (result.get("features") or {}).items():
                gauge.add_metric([feature], 1.0 if stats.get("drift") else 0.0)
            gauge.add_metric(["__prediction__"], 1.0 if result.get("prediction_drift") else 0.0)
            gauge.add_metric(["__alert__"], 1.0 if result.get("alert") else 0.0)
        yield gauge


class Metrics:
    """Counters and histograms of one service instance."""

    def __init__(self, monitor_file: Path) -> None:
        # prometheus_client chose its value storage when it was imported; Feast sets
        # PROMETHEUS_MULTIPROC_DIR on import of feast.metrics, so trust the choice, not the env
        from prometheus_client import values

        multiprocess = values.ValueClass is not values.MutexValue
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if multiprocess else None
        self.registry = CollectorRegistry()
        self.drift = DriftCollector(monitor_file)
        self.registry.register(self.drift)
        r = self.registry
        self.requests = Counter(
            "featureops_requests", "Prediction requests by HTTP status", ["status"], registry=r
        )
        self.latency = Histogram(
            "featureops_request_latency_seconds",
            "Latency of /predict (every status)",
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.probability = Histogram(
            "featureops_prediction_probability",
            "Predicted probability of the positive class",
            registry=r,
            buckets=tuple(i / 10 for i in range(1, 11)),
        )
        self.missing = Counter(
            "featureops_missing_features",
            "Feature values missing or stale at serving",
            ["kind"],
            registry=r,
        )
        self.log_dropped = Counter(
            "featureops_feature_log_dropped_rows",
            "Served rows not logged because the log writer fell behind",
            registry=r,
        )
        self.refresh_errors = Counter(
            "featureops_refresh_errors",
            "Failed reloads of the model / registry (the previous one keeps serving)",
            registry=r,
        )
        self._status: dict[int, Any] = {}
        self.missing_kind = self.missing.labels(kind="missing")
        self.stale_kind = self.missing.labels(kind="stale")

    def count(self, status: int, seconds: float) -> None:
        child = self._status.get(status)
        if child is None:
            child = self._status[status] = self.requests.labels(status=str(status))
        child.inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self.drift)
        return generate_latest(registry)


class PredictPath:
    """ASGI layer answering ``POST <path>`` itself, in front of FastAPI.

    Refuses bodies over ``max_body`` (413), passes the body and the X-API-Key header to
    ``answer(api_key, body) -> (status, json bytes)`` and sends its response. Counts every
    response status of the path and its latency, including 405 (other methods, answered by
    FastAPI) and 500 (``answer`` raised: FastAPI's error middleware answers).
    """

    def __init__(self, app: Any, metrics: Metrics, max_body: int, answer: Any, path="/predict"):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.answer = answer
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            if scope["method"] != "POST":
                status = await self._delegate(scope, receive, send)
                return
            api_key = None
            length = None
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value
                elif name == b"x-api-key":
                    api_key = value.decode("latin-1")
            body = await self._read_body(receive, length)
            if body is None:
                status = 413
                await _plain(send, 413, f"request body over {self.max_body} bytes")
                return
            status, content = self.answer(api_key, body)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(content)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
        except Exception:
            status = 500
            raise
        finally:
            self.metrics.count(status, time.perf_counter() - started)

    async def _delegate(self, scope, receive, send) -> int:
        status = 500

        async def send_and_record(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, send_and_record)
        return status

    async def _read_body(self, receive, length: bytes | None) -> bytes | None:
        if length is not None:
            try:
                if int(length) > self.max_body:
                    return None
            except ValueError:
                pass
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _plain(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
