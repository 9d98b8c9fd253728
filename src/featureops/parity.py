"""Training/serving parity: recompute logged served vectors offline and compare."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from featureops import catalog
from featureops.frames import build_frame

if TYPE_CHECKING:
    from feast import FeatureStore


def check_parity(store: FeatureStore, log: pd.DataFrame, tolerance: float = 1e-9) -> dict[str, Any]:
    """Rebuild each logged (machine, feature_time) offline through the same feature service.

    Returns per-feature mismatch counts and the worst examples; ``ok`` is True when every
    logged value equals its offline value within ``tolerance`` (absolute, numeric) or
    exactly (other types), nulls equal nulls.
    """
    report: dict[str, Any] = {"rows": len(log), "services": {}, "ok": True}
    for service, part in log.groupby("feature_service"):
        entities = pd.DataFrame(
            {
                catalog.ENTITY_KEY: part[catalog.ENTITY_KEY].astype("int64").to_numpy(),
                catalog.EVENT_TIMESTAMP: pd.to_datetime(part["feature_time"], utc=True).to_numpy(),
            }
        )
        entities[catalog.EVENT_TIMESTAMP] = (
            entities[catalog.EVENT_TIMESTAMP].dt.tz_localize("UTC")
            if entities[catalog.EVENT_TIMESTAMP].dt.tz is None
            else entities[catalog.EVENT_TIMESTAMP]
        )
        offline = build_frame(store, str(service), entities)
        features = [c for c in offline.columns if c not in entities.columns and c in part.columns]
        mismatches: dict[str, int] = {}
        examples = []
        for col in features:
            served = part[col].to_numpy()
            recomputed = offline[col].to_numpy()
            both_null = pd.isna(served) & pd.isna(recomputed)
            if pd.api.types.is_numeric_dtype(offline[col]):
                a = pd.to_numeric(pd.Series(served), errors="coerce").to_numpy(dtype=float)
                b = recomputed.astype(float)
                equal = both_null | (np.abs(a - b) <= tolerance)
            else:
                equal = both_null | (served == recomputed)
            bad = np.flatnonzero(~equal)
            if len(bad):
                mismatches[col] = len(bad)
                i = int(bad[0])
                examples.append(
                    {
                        "feature": col,
                        "machine_id": int(entities.iloc[i, 0]),
                        "feature_time": str(entities.iloc[i, 1]),
                        "served": served[i],
                        "offline": recomputed[i],
                    }
                )
        report["services"][str(service)] = {
            "rows": len(part),
            "features_checked": len(features),
            "mismatches": mismatches,
            "examples": examples[:10],
        }
        report["ok"] = report["ok"] and not mismatches
    return report
