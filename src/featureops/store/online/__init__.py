"""Online store adapters, chosen from ``feature_store.yaml``'s ``online_store.type``.

- ``sqlite`` (the embedded default): :mod:`.sqlite`, our fast paths: bulk writes of the
  rows Feast would write, direct reads of Feast's tables, bookkeeping inside the file;
- anything else (``redis`` included): :mod:`.stock`, Feast's public API only, bookkeeping
  in a JSON file beside the registry.

Switching engines is a configuration change; no module outside this package calls a
private Feast function for the online store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featureops.store.online.base import OnlineReadPath, OnlineWritePath, StoredView, ViewState

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

__all__ = [
    "OnlineReadPath",
    "OnlineStoreError",
    "OnlineWritePath",
    "StoredView",
    "ViewState",
    "is_sqlite",
    "online_reader",
    "online_writer",
]


class OnlineStoreError(RuntimeError):
    """The online store cannot be used as configured (the message says why)."""


def is_sqlite(config: RepoConfig) -> bool:
    """Whether the configured online store is Feast's SQLite store (our fast paths)."""
    from featureops.store.online.sqlite import TYPES

    return str(config.online_store.type) in TYPES


def online_reader(config: RepoConfig, repo_path: str) -> OnlineReadPath:
    """The read path for the configured online store."""
    if is_sqlite(config):
        from featureops.store.online.sqlite import SqliteReader, db_path

        return SqliteReader(db_path(config, repo_path))
    from featureops.store.online.stock import FeastReader

    return FeastReader(config)


def online_writer(store: FeatureStore, fast: bool = True) -> OnlineWritePath:
    """The materialization path for the store's online store (``fast``: SQLite bulk writes)."""
    if is_sqlite(store.config):
        from featureops.store.online.sqlite import SqliteWriter

        return SqliteWriter(store, fast=fast)
    from featureops.store.online.stock import FeastWriter

    return FeastWriter(store)
