"""Fingerprints of Feast definitions: what a training frame or model was built against.

A fingerprint is the sha256 of a canonical JSON of the parts of a definition that change
the values it produces (names, types, TTLs, sources, transformation code), not registry
metadata such as creation times.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore, FeatureView, OnDemandFeatureView


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def view_spec(view: FeatureView) -> dict[str, Any]:
    """The value-relevant parts of a batch feature view."""
    source = view.batch_source
    if source is None:  # Feast requires one for a batch view; this keeps it explicit
        raise ValueError(f"feature view {view.name!r} has no batch source")
    return {
        "name": view.name,
        "entities": sorted(view.entities),
        "join_keys": [(c.name, str(c.dtype)) for c in view.entity_columns],
        "ttl_seconds": int(view.ttl.total_seconds()) if view.ttl else 0,
        "features": [(f.name, str(f.dtype)) for f in view.features],
        "source": {
            # The file name only: the data version is recorded from dvc.lock, and the
            # absolute path differs between clones.
            "table": Path(getattr(source, "path", "") or "").name,
            "timestamp_field": source.timestamp_field,
            "created_timestamp_column": source.created_timestamp_column,
            "field_mapping": dict(source.field_mapping or {}),
        },
    }


def odfv_spec(odfv: OnDemandFeatureView) -> dict[str, Any]:
    """The value-relevant parts of an on-demand feature view (including its code)."""
    transformation = odfv.feature_transformation
    return {
        "name": odfv.name,
        "mode": odfv.mode,
        "sources": sorted(odfv.source_feature_view_projections),
        "request_sources": sorted(odfv.source_request_sources),
        "features": [(f.name, str(f.dtype)) for f in odfv.features],
        "udf": getattr(transformation, "udf_string", None),
    }


def view_fingerprint(view: FeatureView) -> str:
    """sha256 of :func:`view_spec`."""
    return _digest(view_spec(view))


def service_spec(store: FeatureStore, service: FeatureService) -> dict[str, Any]:
    """A feature service with the specs of every view it reads (ODFV sources included)."""
    views: dict[str, Any] = {}
    projections = []
    for proj in service.feature_view_projections:
        projections.append(
            {
                "view": proj.name,
                "alias": proj.name_alias,
                "features": [f.name for f in proj.features],
            }
        )
        try:
            odfv = store.get_on_demand_feature_view(proj.name)
        except Exception:
            odfv = None
        if odfv is not None:
            views[odfv.name] = odfv_spec(odfv)
            for src in odfv.source_feature_view_projections:
                views[src] = view_spec(store.get_feature_view(src))
        else:
            views[proj.name] = view_spec(store.get_feature_view(proj.name))
    return {"service": service.name, "projections": projections, "views": views}


def service_fingerprint(store: FeatureStore, service_name: str) -> str:
    """sha256 of :func:`service_spec` for a registered feature service."""
    return _digest(service_spec(store, store.get_feature_service(service_name)))
