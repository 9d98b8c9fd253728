"""Names and paths every stage agrees on (Feast's conventions for entity and feature frames).

Feast file sources record Parquet paths relative to the project folder (the feature repo's
parent), so a registry is the same bytes in every clone; :func:`resolve_source_path` reads
them back.
"""

from pathlib import Path

EVENT_TIMESTAMP = "event_timestamp"  # entity time in entity frames; event time in feature tables
CREATED = "created"  # when a row became known (Feast's created_timestamp_column)


def resolve_source_path(repo_path: str | Path, path: str) -> Path:
    """A source path from the registry as an absolute path (relative: to the project folder)."""
    resolved = Path(path)
    return resolved if resolved.is_absolute() else Path(repo_path).resolve().parent / resolved


def offline_store_kind(store_type: str) -> str:
    """``offline_store.type`` as featureops names it: Feast's full class name of the Spark
    store counts as ``spark``; any other value is returned as it is."""
    return "spark" if store_type.endswith("SparkOfflineStore") else store_type
