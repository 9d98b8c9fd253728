"""What one worker serves with: the production model, its feature service's reader and the
online store connection, bundled in an immutable :class:`ServingState`.

The online store is whatever ``feature_store.yaml`` configures (SQLite read directly,
Redis or any other store through its adapter: :mod:`featureops.store.online`).
A :class:`Refresher` thread rebuilds the state off the request path when the production
pointer, the Feast registry file or the online store file (SQLite) changes, and swaps it in with
one reference assignment; a request reads ``holder.state`` once and uses that snapshot to
the end. A failed rebuild keeps the previous state serving (and is counted).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featureops.feature_log import LogBatch, lower_thread_priority
from featureops.online import ServiceReader, build_reader
from featureops.registry import POINTER_FILE, load_production
from featureops.serving.model import ServingModel
from featureops.serving.requests import INT_RANGES, RequestError
from featureops.serving.settings import ServingSettings
from featureops.store.online import online_reader

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

LOG_META = ("request_id", "feature_time", "served_at", "model_version", "feature_service")
LOG_RESULT = ("status", "probability", "stale_features")

_KEY_ARROW = {"INT64": pa.int64(), "UNIX_TIMESTAMP": pa.int64(), "INT32": pa.int32()}
_FEATURE_ARROW = {
    "DOUBLE": pa.float64(),
    "FLOAT": pa.float32(),
    "INT64": pa.int64(),
    "INT32": pa.int32(),
    "STRING": pa.string(),
    "BOOL": pa.bool_(),
    "BYTES": pa.binary(),
    "UNIX_TIMESTAMP": pa.timestamp("us", tz="UTC"),
}


class ServingError(RuntimeError):
    """The production model cannot be served with its feature service (the reason is given)."""


@dataclass(frozen=True)
class ServingState:
    """Everything a request needs, never mutated after it is built."""

    reader: ServiceReader
    con: Any  # the online store handle of reader.connect()
    model: ServingModel
    manifest: dict[str, Any]
    version: str
    service: str
    threshold: float
    inputs: list[str]
    sources: dict[str, tuple[str, ...]]  # model input -> stored views it depends on
    log_schema: pa.Schema
    logged_features: tuple[str, ...] = ()
    float_inputs: frozenset[str] = frozenset()  # inputs of a float type (NaN possible)
    fingerprint: tuple = field(default=())

    def _stale_features(self, stale_views: tuple[str, ...]) -> list[str]:
        """Model inputs that depend on any of ``stale_views`` (cached per combination)."""
        cache = self.__dict__.setdefault("_stale_cache", {})
        found = cache.get(stale_views)
        if found is None:
            found = cache[stale_views] = [
                f for f in self.inputs if any(s in stale_views for s in self.sources[f])
            ]
        return list(found)

    @property
    def join_keys(self) -> dict[str, str]:
        return self.reader.join_keys

    def predict(
        self, entities: dict[str, list[Any]], n: int, now: datetime
    ) -> tuple[list[dict[str, Any]], LogBatch, dict[str, int]]:
        """Predictions for ``n`` validated entity rows; the feature-log batch; counts."""
        rows = self.reader.read(self.con, entities)
        keys = list(self.reader.join_keys)
        unknown = rows.unknown_rows()
        if unknown:
            listed = [{k: entities[k][i] for k in keys} for i in unknown]
            raise RequestError(404, f"unknown entities: {json.dumps(listed)}")
        values = rows.values
        cutoff = now.timestamp()
        stale_views: dict[str, list[bool]] = {}
        for view, ttl in self.reader.ttl_seconds.items():
            if ttl > 0:
                limit = cutoff - ttl
                flags = [ts is not None and ts < limit for ts in rows.event_ts[view]]
                if True in flags:
                    stale_views[view] = flags
        inputs = self.inputs
        # missing values, column by column: C-level scans; rows are visited only when a
        # column has a null (None) or a NaN (a float column whose fsum is NaN)
        missing_at: dict[int, list[str]] = {}
        for f in inputs:
            col = values[f]
            if None in col:
                bad = [i for i, v in enumerate(col) if v is None or v != v]
            elif f in self.float_inputs and _has_nan(col):
                bad = [i for i, v in enumerate(col) if v != v]
            else:
                continue
            for i in bad:
                missing_at.setdefault(i, []).append(f)
        stale_for = self._stale_features
        statuses: list[str] = []
        missing_of: list[list[str]] = []
        stale_of: list[list[str]] = []
        ok_rows: list[int] = []
        n_missing = n_stale = 0
        for i in range(n):
            missing = missing_at.get(i, [])
            stale: list[str] = []
            if stale_views:
                stale_here = tuple(view for view, flags in stale_views.items() if flags[i])
                stale = stale_for(stale_here) if stale_here else []
            if stale and missing:
                stale = [f for f in stale if f not in missing]
            missing_of.append(missing)
            stale_of.append(stale)
            n_missing += len(missing)
            n_stale += len(stale)
            if missing:
                statuses.append("missing_features")
            elif stale:
                statuses.append("stale_features")
            else:
                statuses.append("ok")
                ok_rows.append(i)
        probability: list[float | None] = [None] * n
        if ok_rows:
            columns: dict[str, Sequence[Any]]
            if len(ok_rows) == n:
                columns = {f: values[f] for f in inputs}
            else:
                columns = {f: [values[f][i] for i in ok_rows] for f in inputs}
            for i, p in zip(ok_rows, self.model.predict_proba(columns, len(ok_rows)), strict=True):
                probability[i] = float(p)
        threshold = self.threshold
        key_rows = list(zip(*(entities[k] for k in keys), strict=True))
        feature_rows = list(zip(*(values[f] for f in inputs), strict=True))
        labels = [None if p is None else int(p >= threshold) for p in probability]
        predictions = [
            {
                "entity": dict(zip(keys, key_rows[i], strict=True)),
                "status": statuses[i],
                "probability": probability[i],
                "label": labels[i],
                "missing_features": missing_of[i],
                "stale_features": stale_of[i],
                "features": dict(zip(inputs, feature_rows[i], strict=True)),
            }
            for i in range(n)
        ]
        columns_log: dict[str, list[Any]] = {
            "request_id": [str(uuid.uuid4())] * n,
            "feature_time": [now] * n,
            "served_at": [datetime.now(UTC)] * n,
            "model_version": [self.version] * n,
            "feature_service": [self.service] * n,
            **{k: entities[k] for k in keys},
            "status": statuses,
            "probability": probability,
            "stale_features": stale_of,
            **{f: values[f] for f in self.logged_features},
        }
        batch = LogBatch(columns_log, n, self.log_schema)
        return predictions, batch, {"missing": n_missing, "stale": n_stale}


def _has_nan(col: list[float]) -> bool:
    try:
        total = math.fsum(col)
    except (OverflowError, ValueError, TypeError):  # infinities or odd values: look closely
        return any(v != v for v in col)
    return total != total


def build_state(
    settings: ServingSettings, store: FeatureStore, fingerprint: tuple = ()
) -> ServingState:
    """Load the production model and resolve its feature service (checks everything once)."""
    model, manifest = load_production(settings.registry)
    service = manifest.get("feature_service")
    if not service:
        raise ServingError("the production model's manifest names no feature_service")
    reader = build_reader(store, service)
    inputs = list(manifest.get("features") or getattr(model, "feature_names_in_", []))
    if not inputs:
        raise ServingError("the production model's manifest lists no features")
    absent = [f for f in inputs if f not in reader.features]
    if absent:
        raise ServingError(f"feature service {service!r} does not serve model input(s) {absent}")
    for key, type_name in reader.join_keys.items():
        if type_name not in INT_RANGES and type_name != "STRING":
            raise ServingError(f"join key {key!r} of type {type_name} cannot come in JSON")
    sources: dict[str, tuple[str, ...]] = {}
    for f in inputs:
        view = reader.feature_view[f]
        sources[f] = reader.derived_from.get(view, (view,))
    names = [*LOG_META, *reader.join_keys, *LOG_RESULT, *inputs]
    clash = sorted({x for x in names if names.count(x) > 1})
    if clash:
        raise ServingError(f"feature log columns clash: {clash} (rename the feature or key)")
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("feature_time", pa.timestamp("us", tz="UTC")),
        pa.field("served_at", pa.timestamp("us", tz="UTC")),
        pa.field("model_version", pa.string()),
        pa.field("feature_service", pa.string()),
        *(pa.field(k, _KEY_ARROW.get(t, pa.string())) for k, t in reader.join_keys.items()),
        pa.field("status", pa.string()),
        pa.field("probability", pa.float64()),
        pa.field("stale_features", pa.list_(pa.string())),
    ]
    for f in inputs:
        arrow = _FEATURE_ARROW.get(reader.feature_types[f])
        if arrow is None:
            log.warning("feature %s (%s) is not logged", f, reader.feature_types[f])
            continue
        fields.append(pa.field(f, arrow))
    return ServingState(
        reader=reader,
        con=reader.connect(),
        model=ServingModel(model, inputs),
        manifest=manifest,
        version=str(manifest.get("version")),
        service=service,
        threshold=float(manifest.get("threshold", 0.5)),
        inputs=inputs,
        sources=sources,
        log_schema=pa.schema(fields),
        logged_features=tuple(f for f in inputs if f in {x.name for x in fields}),
        float_inputs=frozenset(f for f in inputs if reader.feature_types[f] in ("DOUBLE", "FLOAT")),
        fingerprint=fingerprint,
    )


def _stat(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


class StateHolder:
    """The current state of one worker and the thread that keeps it fresh."""

    def __init__(self, settings: ServingSettings) -> None:
        from feast import FeatureStore

        self.settings = settings
        self.store = FeatureStore(repo_path=str(settings.feature_repo))
        self._registry_file = self._local_registry_file()
        # a file-based online store (SQLite): replaced by a rebuild -> reopen; None: a server
        self._db_file = online_reader(self.store.config, str(self.store.repo_path)).watched_file()
        self.state: ServingState = build_state(settings, self.store, self.fingerprint())
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_error: Callable[[Exception], None] | None = None

    def _local_registry_file(self) -> Path | None:
        registry = self.store.config.registry
        path = getattr(registry, "path", None)
        if not path or "://" in str(path):
            return None
        path = Path(path)
        return path if path.is_absolute() else Path(self.store.repo_path) / path

    def fingerprint(self) -> tuple:
        """What a change of means a rebuild: production pointer, registry, online store."""
        pointer = _stat(self.settings.registry / POINTER_FILE)
        registry = (
            _stat(self._registry_file)
            if self._registry_file
            else ("remote", int(time.monotonic() // 60))  # not a local file: every minute
        )
        # a replaced store file: reopen (a server store keeps its connection)
        online = _stat(self._db_file)[:2] if self._db_file else ("server",)
        return (pointer, registry, online)

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the state if something changed; return True if a new state is in use."""
        current = self.fingerprint()
        if not force and current == self.state.fingerprint:
            return False
        try:
            if self._registry_file is None or current[1] != self.state.fingerprint[1]:
                self.store.refresh_registry()
            new = build_state(self.settings, self.store, current)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if message != self.last_error:
                log.error("keeping model %s: refresh failed: %s", self.state.version, message)
            self.last_error = message
            if self.on_error is not None:
                self.on_error(exc)
            return False
        old = self.state
        self.state = new
        self.last_error = None
        gc.freeze()  # the new state is long-lived too (see app.lifespan)
        if (new.version, new.service) != (old.version, old.service):
            log.info("serving model %s (%s), was %s", new.version, new.service, old.version)
        return True

    def start(self) -> StateHolder:
        if self._thread is None and self.settings.refresh_seconds > 0:
            self._thread = threading.Thread(
                target=self._run, name="featureops-refresh", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        lower_thread_priority()
        while not self._stop.wait(self.settings.refresh_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
