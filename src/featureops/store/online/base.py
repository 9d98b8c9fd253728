"""What every online store adapter provides, and the records they share.

Reading (:class:`OnlineReadPath`): fetch the rows of one feature view for a batch of
distinct entity keys (Feast's serialized entity keys, version 3), filling the caller's
columns in place. Writing (:class:`OnlineWritePath`): make the view's online rows equal the
latest source rows of a window, with the bookkeeping of incremental materialization kept
where the engine can keep it durably (see each adapter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa
    from feast import FeatureStore, FeatureView


@dataclass(frozen=True)
class StoredView:
    """One stored feature view a service reads: its keys, its features, its online table."""

    name: str  # the projection's name (what staleness and lineage refer to)
    view: Any  # the registry's feast.FeatureView
    table: str  # Feast's table id (``<project>_<view>``)
    keys: tuple[str, ...]  # request key names of the view's join keys (encode() sorts them)
    encode: Callable[[tuple[Any, ...]], bytes]  # Feast's serialize_entity_key, precompiled
    features: tuple[str, ...]  # read from the store (service features + on-demand inputs)
    feature_types: dict[str, Any]  # feature -> Feast ValueType (for Feast's conversion)
    ttl_seconds: float  # 0: unlimited
    subset: bool = False  # only some of the view's features are read


class OnlineReadPath(Protocol):
    """Per-view online reads for :class:`featureops.online.ServiceReader`."""

    kind: str

    def connect(self) -> Any:
        """A handle for :meth:`read_view` (one per process or thread)."""

    def watched_file(self) -> Path | None:
        """A file whose replacement means reconnecting (None: a server store)."""

    def read_view(
        self,
        handle: Any,
        view: StoredView,
        first: dict[bytes, int],
        columns: dict[str, list[Any]],
        stamps: dict[bytes, int | None],
    ) -> None:
        """Fill ``columns[feature][first[key]]`` and ``stamps[key]`` (event time, epoch
        seconds) for every key of ``first`` the store holds rows of; leave the others."""


@dataclass(frozen=True)
class ViewState:
    """The bookkeeping of one view: what the last run materialized and left online."""

    fingerprint: str
    end: datetime
    digest: str
    table: str | None
    rows: int | None
    entities: int | None
    probe: tuple[str, ...] = ()  # hex entity keys read back to verify a server store


class OnlineWritePath(Protocol):
    """Incremental materialization into one engine (see :mod:`featureops.materialize`)."""

    kind: str
    counts_rows: bool  # True: write() records the counts it finds in the store

    def begin(
        self, views: list[FeatureView], all_views: list[FeatureView], prune: bool
    ) -> dict[str, ViewState]:
        """Create missing tables, drop what removed views left (``prune``); the bookkeeping."""

    def verify(self, view: FeatureView, previous: ViewState) -> str:
        """Why the store does not hold what ``previous`` recorded ("" if it does)."""

    def write(self, view: FeatureView, table: pa.Table, full: bool, state: ViewState) -> ViewState:
        """Upsert ``table`` (replacing the view's rows if ``full``); record and return ``state``."""

    def finish(self) -> None:
        """Flush what the run wrote (e.g. a SQLite checkpoint)."""


def ensure_tables(store: FeatureStore, views: list[FeatureView]) -> None:
    """Create the online tables (keys, for Redis) of ``views`` that are missing; drop none.

    Feast's public ``update_infra`` (``partial``): e.g. a deleted online_store.db with an
    unchanged registry gets its tables back before materialize writes.
    """
    store.provider.update_infra(
        project=store.project,
        tables_to_delete=[],
        tables_to_keep=views,
        entities_to_delete=[],
        entities_to_keep=store.list_entities(),
        partial=True,
    )
