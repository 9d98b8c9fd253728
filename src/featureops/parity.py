"""Training/serving parity: recompute logged served vectors offline and compare.

Each logged row names its feature service, its entity (the service's join-key columns,
with the types they were served with) and the time its features were judged at
(``feature_time``). The same service is evaluated offline, point in time, at that entity
and time; every served feature must equal its offline value. A feature the service flagged
stale (older than its view's TTL at ``feature_time``) must be null offline, where the TTL
hides it: that checks the online staleness rule against the offline one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from featureops.conventions import EVENT_TIMESTAMP
from featureops.frames import build_frame

if TYPE_CHECKING:
    from feast import FeatureStore

LOG_COLUMNS = {
    "request_id",
    "feature_time",
    "served_at",
    "model_version",
    "feature_service",
    "status",
    "probability",
    "stale_features",
}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _is_null(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(pd.Series(values, dtype=object)), dtype=bool)


def check_parity(
    store: FeatureStore,
    log: pd.DataFrame,
    tolerance: float = 1e-9,
    **frame_options: Any,
) -> dict[str, Any]:
    """Rebuild each logged (entity, feature_time) offline through the same feature service.

    Returns per-feature mismatch counts and the first examples; ``ok`` is True when every
    logged value equals its offline value within ``tolerance`` (absolute, numeric) or
    exactly (other types), nulls equal nulls, and every feature flagged stale is null
    offline. ``frame_options`` go to :func:`featureops.frames.build_frame` (e.g.
    ``as_known_at``; its default is what a server at ``feature_time`` could have read).
    """
    from featureops.online import service_join_keys

    report: dict[str, Any] = {"rows": len(log), "services": {}, "ok": True}
    for service, part in log.groupby("feature_service", sort=False):
        part = part.reset_index(drop=True)
        keys = list(service_join_keys(store, str(service)))
        absent = [k for k in keys if k not in part.columns]
        if absent:
            raise ValueError(f"feature log rows of {service!r} lack join-key column(s) {absent}")
        entities = part[keys].copy()  # as logged: ints stay ints, strings stay strings
        entities[EVENT_TIMESTAMP] = pd.to_datetime(part["feature_time"], utc=True)
        offline = build_frame(store, str(service), entities, **frame_options)
        features = [
            c
            for c in offline.columns
            if c not in entities.columns and c in part.columns and c not in LOG_COLUMNS
        ]
        stale_lists = (
            part["stale_features"].tolist()
            if "stale_features" in part.columns
            else [None] * len(part)
        )
        mismatches: dict[str, int] = {}
        examples = []
        for col in features:
            served = part[col].to_numpy(dtype=object)
            recomputed = offline[col].to_numpy(dtype=object)
            served_null, offline_null = _is_null(served), _is_null(recomputed)
            both_null = served_null & offline_null
            if pd.api.types.is_numeric_dtype(offline[col]) and not pd.api.types.is_bool_dtype(
                offline[col]
            ):
                a = pd.to_numeric(pd.Series(served), errors="coerce").to_numpy(dtype=float)
                b = pd.to_numeric(pd.Series(recomputed), errors="coerce").to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):
                    equal = both_null | (np.abs(a - b) <= tolerance)
            else:
                equal = both_null | np.array(
                    [
                        not sn and not on and s == r
                        for s, r, sn, on in zip(
                            served, recomputed, served_null, offline_null, strict=True
                        )
                    ],
                    dtype=bool,
                )
            stale = np.array(
                [s is not None and len(s) > 0 and col in list(s) for s in stale_lists], dtype=bool
            )
            ok = np.where(stale, offline_null, equal)
            bad = np.flatnonzero(~ok)
            if len(bad):
                mismatches[col] = len(bad)
                i = int(bad[0])
                examples.append(
                    {
                        "feature": col,
                        "entity": {k: _plain(part.loc[i, k]) for k in keys},
                        "feature_time": str(entities.loc[i, EVENT_TIMESTAMP]),
                        "served": _plain(served[i]),
                        "offline": _plain(recomputed[i]),
                        "flagged_stale": bool(stale[i]),
                    }
                )
        report["services"][str(service)] = {
            "rows": len(part),
            "join_keys": keys,
            "features_checked": len(features),
            "mismatches": mismatches,
            "examples": examples[:10],
        }
        report["ok"] = report["ok"] and not mismatches
    return report
