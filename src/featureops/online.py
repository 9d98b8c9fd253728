"""Online reads of a Feast feature service, through the configured online store's adapter.

:class:`ServiceReader`'s :meth:`~ServiceReader.read` returns, for the service's features,
the values ``FeatureStore.get_online_features(...).to_dict()`` returns (same Python values,
nulls for missing entities, on-demand views applied with Feast's own transformation code
and its output conversion) without Feast's per-call registry lookups, protobuf response or
DataFrames; with each stored view's "found" flags and event times (staleness). The rows
of each view come from the adapter of the configured store
(:func:`featureops.store.online.online_reader`): Feast's SQLite tables read directly (the
embedded default), or any other store (Redis, ...) through its public ``online_read``.
The integration tests compare both with ``get_online_features`` on the same stores.

Supported: feature views with any number of join keys (INT32 / INT64 / STRING / BYTES /
UNIX_TIMESTAMP keys, ``join_key_map`` projections), and on-demand views in ``python``
mode (fast: plain lists) or ``pandas`` mode (correct, one small Arrow table per call). Not
supported (refused when the reader is built, with the reason): on-demand views that read
request data or are written to the online store, aggregations, entity-less views,
version-qualified services.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureops.store.online import OnlineReadPath, OnlineStoreError, StoredView, online_reader

if TYPE_CHECKING:
    from feast import FeatureStore

# Value types a request may give for a join key (Feast's ValueType names).
KEY_TYPES = ("INT32", "INT64", "STRING", "BYTES", "UNIX_TIMESTAMP")


# The feature service cannot be read online (the message says why).
OnlineReadError = OnlineStoreError


@dataclass(frozen=True)
class _OnDemandView:
    name: str
    odfv: Any  # feast.OnDemandFeatureView (the registry's object: Feast's transformation)
    mode: str
    outputs: tuple[str, ...]  # its features that the service requests
    output_types: dict[str, Any]
    inputs: tuple[str, ...]  # source views (names) whose features it may read
    input_features: tuple[str, ...]  # the features it declares from those views
    udf: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # python mode, batch
    aliases: tuple[tuple[str, str], ...] = ()  # (feature, "<source>__<feature>")


@dataclass
class OnlineRows:
    """Values of a service's features for a batch of entity rows, column by column."""

    n: int
    values: dict[str, list[Any]]  # feature -> values, service order
    found: dict[str, list[bool]]  # stored view -> the entity has rows of the features read
    event_ts: dict[str, list[int | None]]  # stored view -> event time (epoch seconds)
    unique_reads: int = 0  # distinct entity keys read (all views)

    def unknown_rows(self) -> list[int]:
        """Rows found in none of the stored views."""
        views = list(self.found.values())
        return [i for i in range(self.n) if not any(v[i] for v in views)]


@dataclass
class ServiceReader:
    """Reads one feature service online. Immutable once built; cheap to call."""

    service: str
    project: str
    store: OnlineReadPath  # the configured online store's read path
    join_keys: dict[str, str]  # request key -> Feast ValueType name
    features: list[str]  # the service's output features, in service order
    feature_types: dict[str, str]  # feature -> Feast ValueType name
    feature_view: dict[str, str]  # feature -> stored view or on-demand view name
    ttl_seconds: dict[str, float]  # stored view -> TTL (0: unlimited)
    derived_from: dict[str, tuple[str, ...]]  # on-demand view -> stored source views
    views: list[StoredView] = field(repr=False, default_factory=list)
    on_demand: list[_OnDemandView] = field(repr=False, default_factory=list)

    @property
    def db_path(self) -> Path | None:
        """The online store's file (SQLite), whose replacement means reconnecting."""
        return self.store.watched_file()

    def connect(self) -> Any:
        """A connection to the online store for :meth:`read` (one per process / thread)."""
        return self.store.connect()

    def read(self, con: Any, entities: Mapping[str, Sequence[Any]]) -> OnlineRows:
        """Features for each entity row; ``entities`` maps every join key to equal-length lists.

        Values must already have their key's type (the service validates requests).
        """
        n = len(next(iter(entities.values()))) if entities else 0
        values: dict[str, list[Any]] = {}
        found: dict[str, list[bool]] = {}
        event_ts: dict[str, list[int | None]] = {}
        reads = 0
        read_view = self.store.read_view
        for view in self.views:
            # distinct keys: the first row of each, and the rows repeating it
            first: dict[bytes, int] = {}
            repeats: list[tuple[int, int]] = []
            encode = view.encode
            keys: Iterable[tuple[Any, ...]]
            if len(view.keys) == 1:
                keys = ((v,) for v in entities[view.keys[0]])
            else:
                keys = zip(*(entities[k] for k in view.keys), strict=True)
            for i, key in enumerate(keys):
                key_bin = encode(key)
                j = first.setdefault(key_bin, i)
                if j != i:
                    repeats.append((i, j))
            reads += len(first)
            v_values: dict[str, list[Any]] = {f: [None] * n for f in view.features}
            stamps: dict[bytes, int | None] = {}
            read_view(con, view, first, v_values, stamps)
            v_found = [False] * n
            v_ts: list[int | None] = [None] * n
            for key_bin, ts in stamps.items():
                i = first[key_bin]
                v_found[i] = True
                v_ts[i] = ts
            for i, j in repeats:
                v_found[i] = v_found[j]
                v_ts[i] = v_ts[j]
                for column in v_values.values():
                    column[i] = column[j]
            values.update(v_values)
            found[view.name] = v_found
            event_ts[view.name] = v_ts
        for odfv in self.on_demand:
            values.update(self._transform(odfv, entities, values, n))
        return OnlineRows(
            n=n,
            values={f: values[f] for f in self.features},
            found=found,
            event_ts=event_ts,
            unique_reads=reads,
        )

    def _transform(
        self,
        odfv: _OnDemandView,
        entities: Mapping[str, Sequence[Any]],
        values: dict[str, list[Any]],
        n: int,
    ) -> dict[str, list[Any]]:
        # The join keys and the source features the view declares. (Feast also passes the
        # other features it happened to read from those source views; a transformation
        # reads what it declares, so the values are the same, for a fraction of the work.)
        inputs: dict[str, Any] = {k: list(v) for k, v in entities.items()}
        for f in odfv.input_features:
            inputs[f] = values[f]
        if odfv.udf is not None:
            # Feast's transform_dict without its per-call runtime type checks (typeguard
            # costs more than the transformation): the same aliases, the same function
            for short, full in odfv.aliases:
                inputs[full] = inputs[short]
            out = odfv.udf(inputs)
            return {
                f: _as_feast_values(_column(out[f], n, odfv.name, f), odfv.output_types[f])
                for f in odfv.outputs
            }
        if odfv.mode == "python":  # singleton mode: Feast's own call
            out = odfv.odfv.transform_dict(inputs)
            return {
                f: _as_feast_values(_column(out[f], n, odfv.name, f), odfv.output_types[f])
                for f in odfv.outputs
            }
        import pyarrow as pa

        table = odfv.odfv.transform_arrow(pa.Table.from_pydict(inputs), False)
        return {
            f: _as_feast_values(table[f].to_numpy(), odfv.output_types[f], numpy=True)
            for f in odfv.outputs
        }


def _column(values: Any, n: int, view: str, feature: str) -> list[Any]:
    if not isinstance(values, list):
        values = list(values)
    if len(values) != n:
        raise OnlineReadError(
            f"on-demand view {view!r} returned {len(values)} values of {feature!r} for {n} rows"
        )
    return values


# ---------------------------------------------------------------------------------------
# On-demand outputs: Feast's own conversion, with exact fast paths for plain values.


def _as_feast_values(values: Any, value_type: Any, numpy: bool = False) -> list[Any]:
    """On-demand outputs as Feast returns them: through its proto conversion and back.

    Python floats for DOUBLE, ints for INT64 and strs for STRING come back unchanged
    (NaN becomes None, as in Feast), so those skip the round trip.
    """
    from feast.value_type import ValueType

    if not numpy:
        if value_type == ValueType.DOUBLE and all(v is None or type(v) is float for v in values):
            return [None if v is None or v != v else v for v in values]
        if value_type == ValueType.INT64 and all(v is None or type(v) is int for v in values):
            return list(values)
        if value_type == ValueType.STRING and all(v is None or type(v) is str for v in values):
            return list(values)
    from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values

    protos = python_values_to_proto_values(values, value_type)
    return [feast_value_type_to_python_type(p, value_type) for p in protos]


# ---------------------------------------------------------------------------------------
# Entity keys: Feast's serialization (version 3), precompiled per view and checked against
# Feast's own ``serialize_entity_key`` when the reader is built.

_SAMPLES: dict[str, tuple[Any, ...]] = {
    "INT32": (0, -7, 2**31 - 1),
    "INT64": (0, 3, -(2**63), 2**63 - 1),
    "UNIX_TIMESTAMP": (0, 1767225600),
    "STRING": ("", "a", "machine-7", "é✓"),
    "BYTES": (b"", b"\x00\xff"),
}


def _value_encoder(type_name: str) -> tuple[int, Callable[[Any], bytes]]:
    from feast.protos.feast.types.Value_pb2 import ValueType as ProtoValueType

    code = ProtoValueType.Enum.Value(type_name)
    if type_name == "INT64" or type_name == "UNIX_TIMESTAMP":
        return code, struct.Struct("<q").pack
    if type_name == "INT32":
        return code, struct.Struct("<i").pack
    if type_name == "STRING":
        return code, lambda v: v.encode("utf8")
    if type_name == "BYTES":
        return code, bytes
    raise OnlineReadError(f"join keys of type {type_name} are not supported online")


def _key_encoder(
    view_keys: list[str], types: list[str], version: int
) -> Callable[[tuple[Any, ...]], bytes]:
    """bytes of Feast's ``serialize_entity_key`` for a tuple of values (``view_keys`` order).

    Feast sorts multiple join keys by name; the values tuple follows ``view_keys`` order.
    """
    if version < 3:
        raise OnlineReadError(
            f"entity_key_serialization_version {version} is not supported (Feast removed < 3)"
        )
    order = sorted(range(len(view_keys)), key=lambda i: view_keys[i])
    u32 = struct.Struct("<I").pack
    string_code, _ = _value_encoder("STRING")
    prefix = u32(len(view_keys)) + b"".join(
        u32(string_code) + u32(len(k.encode("utf8"))) + k.encode("utf8")
        for k in (view_keys[i] for i in order)
    )
    parts = []
    for i in order:
        code, pack = _value_encoder(types[i])
        parts.append((i, u32(code), pack))
    if len(parts) == 1:
        (i0, code0, pack0) = parts[0]

        def encode_one(values: tuple[Any, ...]) -> bytes:
            raw = pack0(values[i0])
            return prefix + code0 + u32(len(raw)) + raw

        return encode_one

    def encode(values: tuple[Any, ...]) -> bytes:
        out = [prefix]
        for i, code, pack in parts:
            raw = pack(values[i])
            out.append(code + u32(len(raw)) + raw)
        return b"".join(out)

    return encode


def _check_encoder(
    encode: Callable[[tuple[Any, ...]], bytes], view_keys: list[str], types: list[str], version
) -> None:
    """Fail loudly if our key bytes ever differ from Feast's (e.g. after a Feast upgrade)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    field_of = {
        "INT32": "int32_val",
        "INT64": "int64_val",
        "UNIX_TIMESTAMP": "unix_timestamp_val",
        "STRING": "string_val",
        "BYTES": "bytes_val",
    }
    samples: list[tuple[Any, ...]] = [_SAMPLES[t] for t in types]
    for j in range(max(len(s) for s in samples)):
        values = tuple(s[j % len(s)] for s in samples)
        kwargs: list[dict[str, Any]] = [
            {field_of[t]: v} for t, v in zip(types, values, strict=True)
        ]
        proto = EntityKey(join_keys=view_keys, entity_values=[Value(**kw) for kw in kwargs])
        expected = serialize_entity_key(proto, entity_key_serialization_version=version)
        if encode(values) != expected:
            raise OnlineReadError(
                f"entity key encoding of {view_keys} differs from Feast's serialize_entity_key"
            )


# ---------------------------------------------------------------------------------------
# Building a reader from the registry (public Feast API, plus the table naming helper).


def _value_type_name(dtype: Any) -> str:
    return dtype.to_value_type().name


def service_join_keys(store: FeatureStore, service_name: str) -> dict[str, str]:
    """The join keys a request for the service must give, with their Feast value types."""
    return build_reader(store, service_name, online=False).join_keys


def build_reader(store: FeatureStore, service_name: str, online: bool = True) -> ServiceReader:
    """Resolve a feature service against the store's registry into a :class:`ServiceReader`.

    ``online=False`` only resolves (keys, features, views): the store is not opened.
    """
    from feast.infra.online_stores.helpers import compute_table_id
    from feast.on_demand_feature_view import OnDemandFeatureView

    config = store.config
    versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
    version = int(config.entity_key_serialization_version)
    service = store.get_feature_service(service_name)

    join_keys: dict[str, str] = {}
    features: list[str] = []
    feature_types: dict[str, str] = {}
    feature_view: dict[str, str] = {}
    to_read: dict[str, tuple[Any, Any, list[str]]] = {}  # view name -> (view, projection, feats)
    odfvs: list[tuple[Any, Any, list[str]]] = []

    def add_output(name: str, view_name: str, dtype: Any) -> None:
        if name in feature_view:
            raise OnlineReadError(
                f"feature {name!r} is served by both {feature_view[name]!r} and {view_name!r}"
            )
        features.append(name)
        feature_types[name] = _value_type_name(dtype)
        feature_view[name] = view_name

    def need(view: Any, projection: Any, names: list[str]) -> None:
        key = projection.name_to_use()
        have = to_read.setdefault(key, (view, projection, []))[2]
        have.extend(n for n in names if n not in have)

    for proj in service.feature_view_projections:
        if getattr(proj, "version_tag", None) is not None:
            raise OnlineReadError(f"{service_name}: version-qualified views are not supported")
        view = _any_view(store, proj.name)
        names = [f.name for f in proj.features]
        if isinstance(view, OnDemandFeatureView):
            if view.write_to_online_store or view.aggregations:
                raise OnlineReadError(
                    f"on-demand view {view.name!r}: write_to_online_store / aggregations "
                    "are not supported online"
                )
            if view.source_request_sources:
                raise OnlineReadError(
                    f"on-demand view {view.name!r} reads request data: not supported online"
                )
            if view.mode not in ("python", "pandas"):
                raise OnlineReadError(f"on-demand view {view.name!r}: mode {view.mode!r}")
            odfv = view.with_projection(proj)
            for f in proj.features:
                add_output(f.name, proj.name_to_use(), f.dtype)
            sources = []
            for src_proj in view.source_feature_view_projections.values():
                src = store.get_feature_view(src_proj.name)
                need(src, src_proj, [f.name for f in src_proj.features])
                sources.append(src_proj.name_to_use())
            odfvs.append((odfv, proj, sources))
            continue
        for f in proj.features:
            add_output(f.name, proj.name_to_use(), f.dtype)
        need(view, proj, names)

    views: list[StoredView] = []
    ttl: dict[str, float] = {}
    for name, (view, proj, names) in to_read.items():
        columns = list(view.entity_columns)
        if not columns or any(c.name == "__dummy_id" for c in columns):
            raise OnlineReadError(f"view {view.name!r} has no entities: not supported online")
        view_keys = [c.name for c in columns]
        request_keys = [proj.join_key_map.get(k, k) for k in view_keys]
        types = [_value_type_name(c.dtype) for c in columns]
        for key, t in zip(request_keys, types, strict=True):
            if t not in KEY_TYPES:
                raise OnlineReadError(f"join key {key!r} of view {view.name!r}: type {t}")
            if join_keys.setdefault(key, t) != t:
                raise OnlineReadError(
                    f"join key {key!r} is {join_keys[key]} in one view and {t} in {view.name!r}"
                )
        encode = _key_encoder(view_keys, types, version)
        _check_encoder(encode, view_keys, types, version)
        dtypes = {f.name: f.dtype for f in view.features}
        missing = [n for n in names if n not in dtypes]
        if missing:
            raise OnlineReadError(f"view {view.name!r} has no feature(s) {missing}")
        seconds = view.ttl.total_seconds() if view.ttl else 0.0
        ttl[name] = seconds
        views.append(
            StoredView(
                name=name,
                view=view,
                table=compute_table_id(config.project, view, versioning),
                keys=tuple(request_keys),
                encode=encode,
                features=tuple(names),
                feature_types={n: dtypes[n].to_value_type() for n in names},
                ttl_seconds=seconds,
                subset=len(names) < len(view.features),
            )
        )
    on_demand = []
    derived: dict[str, tuple[str, ...]] = {}
    for odfv, proj, sources in odfvs:
        declared = odfv.source_feature_view_projections.values()
        input_features = tuple(dict.fromkeys(f.name for p in declared for f in p.features))
        schema = {f.name: f.dtype for f in odfv.features}
        outputs = tuple(f.name for f in proj.features)
        on_demand.append(
            _OnDemandView(
                name=proj.name_to_use(),
                odfv=odfv,
                mode=odfv.mode,
                outputs=outputs,
                output_types={f: schema[f].to_value_type() for f in outputs},
                inputs=tuple(sources),
                input_features=input_features,
                udf=_batch_udf(odfv),
                aliases=tuple(
                    (f.name, f"{p.name}__{f.name}") for p in declared for f in p.features
                ),
            )
        )
        derived[proj.name_to_use()] = tuple(sources)
    return ServiceReader(
        service=service_name,
        project=config.project,
        store=online_reader(config, str(store.repo_path)),
        join_keys=join_keys,
        features=features,
        feature_types=feature_types,
        feature_view=feature_view,
        ttl_seconds=ttl,
        derived_from=derived,
        views=views,
        on_demand=on_demand,
    )


def _batch_udf(odfv: Any) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The python-mode transformation's function (batch mode), else None."""
    if odfv.mode != "python" or getattr(odfv, "singleton", False):
        return None
    udf = getattr(odfv.feature_transformation, "udf", None)
    return udf if callable(udf) else None


def _any_view(store: FeatureStore, name: str) -> Any:
    from feast.errors import FeatureViewNotFoundException

    try:
        return store.get_feature_view(name)
    except FeatureViewNotFoundException:
        pass
    try:
        return store.get_on_demand_feature_view(name)
    except Exception as exc:  # Feast raises different types per registry
        raise OnlineReadError(f"view {name!r} of the feature service is not registered") from exc
