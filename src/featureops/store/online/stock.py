"""Any other online store (Redis, Postgres, DynamoDB, ...) through Feast's public API only.

- **Writes**: ``FeatureStore.write_to_online_store`` (Feast's conversion and the store's
  ``online_write_batch``); a full refresh first deletes the view's rows with the provider's
  ``update_infra(tables_to_delete=[view])`` (for Redis: a scan of the project's keys,
  ``full_scan_for_deletion``, on by default). Not one transaction: while a view is fully
  refreshed, a reader can miss its entities for that moment. Incremental runs only upsert.
- **Bookkeeping**: a JSON file beside the registry (:data:`STATE_FILE`), replaced atomically
  after each view. It holds, per view, what the SQLite bookkeeping holds (end, definition
  fingerprint, source digest, online entities) and a *probe*: a few entity keys of the
  rows written (evenly spaced, at most :data:`PROBE_KEYS`). Each run reads the probe back
  with the store's ``online_read``; a key the store no longer holds (a flushed or replaced
  Redis, expired keys) means the view is re-materialized from scratch.
- **Reads**: the online store's public ``online_read`` per view (one pipelined round trip
  on Redis), the values converted with Feast's own ``feast_value_type_to_python_type``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureops.io import write_json
from featureops.store.online.base import StoredView, ViewState, ensure_tables

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView
    from feast.repo_config import RepoConfig

STATE_FILE = "materialize_state.json"
# ValueProto fields Feast's feast_value_type_to_python_type returns unchanged
_PLAIN = frozenset({"double_val", "float_val", "int64_val", "int32_val", "bool_val"})
STATE_FORMAT = 1
PROBE_KEYS = 8


def state_path(config: RepoConfig, repo_path: str | Path) -> Path:
    """Where the bookkeeping of a server store lives: beside the registry file."""
    from featureops.store.registry import registry_file

    return registry_file(config, repo_path).parent / STATE_FILE


def _entity_keys(view: FeatureView, table: pa.Table, rows: list[int]) -> list[Any]:
    """EntityKey protos of ``rows`` of ``table`` (the view's join keys, Feast's types)."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values

    columns = list(view.entity_columns)
    values = {
        c.name: python_values_to_proto_values(
            [table.column(c.name)[i].as_py() for i in rows], c.dtype.to_value_type()
        )
        for c in columns
    }
    names = [c.name for c in columns]
    return [
        EntityKey(join_keys=names, entity_values=[values[n][j] for n in names])
        for j in range(len(rows))
    ]


def _found(ts: datetime | None, values: dict[str, Any] | None) -> bool:
    """Whether an ``online_read`` result is a stored row.

    Stores return ``(None, None)`` for a missing entity; Redis returns the epoch and empty
    values for an entity key it holds without this view's fields (or not at all).
    """
    if ts is None or values is None:
        return False
    if any(v.WhichOneof("val") is not None for v in values.values()):
        return True
    return _epoch(ts) != 0


def _epoch(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp())


class FeastWriter:
    """Materialize through ``write_to_online_store``; bookkeeping in a JSON file."""

    kind = "feast"
    counts_rows = False

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.path = state_path(store.config, store.repo_path)
        self.state: dict[str, ViewState] = {}

    def begin(
        self, views: list[FeatureView], all_views: list[FeatureView], prune: bool
    ) -> dict[str, ViewState]:
        store = self.store
        ensure_tables(store, views)
        self.state = self._load()
        if prune:
            registered = {v.name for v in all_views}
            removed = [v for v in self.state if v not in registered]
            for name in removed:  # the store's rows of a removed view are left (see README)
                del self.state[name]
            if removed:
                self._save()
        return dict(self.state)

    def _load(self) -> dict[str, ViewState]:
        if not self.path.exists():
            return {}
        data = json.loads(self.path.read_text())
        if data.get("format") != STATE_FORMAT or data.get("project") != self.store.project:
            return {}  # another layout or project: everything is re-materialized
        return {
            name: ViewState(
                fingerprint=s["fingerprint"],
                end=datetime.fromisoformat(s["end"]),
                digest=s["digest"],
                table=s.get("table"),
                rows=s.get("rows"),
                entities=s.get("entities"),
                probe=tuple(s.get("probe") or ()),
            )
            for name, s in data.get("views", {}).items()
        }

    def _save(self) -> None:
        views = {
            name: {
                "fingerprint": s.fingerprint,
                "end": s.end.isoformat(),
                "digest": s.digest,
                "table": s.table,
                "rows": s.rows,
                "entities": s.entities,
                "probe": list(s.probe),
            }
            for name, s in sorted(self.state.items())
        }
        write_json(
            {
                "format": STATE_FORMAT,
                "project": self.store.project,
                "online_store": self.store.config.online_store.type,
                "views": views,
            },
            self.path,
        )

    def verify(self, view: FeatureView, previous: ViewState) -> str:
        from feast.infra.key_encoding_utils import deserialize_entity_key

        if previous.entities and not previous.probe:
            return "bookkeeping has no probe keys"
        version = self.store.config.entity_key_serialization_version
        keys = [
            deserialize_entity_key(bytes.fromhex(k), entity_key_serialization_version=version)
            for k in previous.probe
        ]
        if not keys:
            return ""
        features = [f.name for f in view.features]
        results = self.store.provider.online_read(self.store.config, view, keys, features)
        missing = sum(not _found(ts, values) for ts, values in results)
        if missing:
            return f"{missing} of {len(keys)} probe entities are not in the online store"
        return ""

    def write(self, view: FeatureView, table: pa.Table, full: bool, state: ViewState) -> ViewState:
        import pandas as pd
        from feast.infra.key_encoding_utils import serialize_entity_key

        store = self.store
        if full:
            store.provider.update_infra(
                project=store.project,
                tables_to_delete=[view],
                tables_to_keep=[],
                entities_to_delete=[],
                entities_to_keep=[],
                partial=True,
            )
            store.provider.update_infra(
                project=store.project,
                tables_to_delete=[],
                tables_to_keep=[view],
                entities_to_delete=[],
                entities_to_keep=[],
                partial=True,
            )
        probe = () if full else state.probe
        if table.num_rows:
            # Arrow-backed columns: integers with nulls stay integers on the way back to Arrow
            store.write_to_online_store(view.name, table.to_pandas(types_mapper=pd.ArrowDtype))
            n = table.num_rows
            picks = sorted({round(i * (n - 1) / max(PROBE_KEYS - 1, 1)) for i in range(PROBE_KEYS)})
            version = store.config.entity_key_serialization_version
            probe = tuple(
                serialize_entity_key(k, entity_key_serialization_version=version).hex()
                for k in _entity_keys(view, table, picks[: min(n, PROBE_KEYS)])
            )
        recorded = replace(state, table=view.name, probe=probe)
        self.state[view.name] = recorded
        self._save()
        return recorded

    def finish(self) -> None:
        return None


class FeastReader:
    """Per-view reads with the online store's public ``online_read``."""

    kind = "feast"

    def __init__(self, config: RepoConfig) -> None:
        self.config = config

    def watched_file(self) -> Path | None:
        return None

    def connect(self) -> Any:
        """An online store object of its own (its client and connection pool)."""
        from feast.infra.online_stores.helpers import get_online_store_from_config

        return get_online_store_from_config(self.config.online_store)

    def read_view(
        self,
        handle: Any,
        view: StoredView,
        first: dict[bytes, int],
        columns: dict[str, list[Any]],
        stamps: dict[bytes, int | None],
    ) -> None:
        from feast.infra.key_encoding_utils import deserialize_entity_key
        from feast.type_map import feast_value_type_to_python_type

        version = self.config.entity_key_serialization_version
        keys = list(first)
        protos = [deserialize_entity_key(k, entity_key_serialization_version=version) for k in keys]
        # a fresh list: some stores append to requested_features
        results = handle.online_read(self.config, view.view, protos, list(view.features))
        types = view.feature_types
        for key_bin, (ts, values) in zip(keys, results, strict=True):
            if not _found(ts, values):
                continue
            stamps[key_bin] = _epoch(ts)
            i = first[key_bin]
            for name, value in values.items():
                column = columns.get(name)
                if column is None:
                    continue
                kind = value.WhichOneof("val")
                if kind in _PLAIN or (kind == "string_val" and types[name].name == "STRING"):
                    column[i] = getattr(value, kind)  # what Feast's conversion returns for these
                else:
                    column[i] = feast_value_type_to_python_type(value, types[name])
