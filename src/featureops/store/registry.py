"""``feast apply`` that never leaves the registry absent, half-written or tied to another folder.

Feast's own ``feast apply`` rewrites ``registry.db`` in place (a reader can see it truncated),
stamps it with fresh timestamps and ids even when nothing changed ("No changes to registry"),
and records the online store's tables by absolute path (its "infra"): in a copied project
folder an apply drops the *original's* tables. :func:`apply_repo` instead

1. applies the definitions with Feast's own code into a **fresh, empty registry** beside the
   real one (so no recorded infra of another folder is ever torn down; tables are created in
   this project's online store only, with ``CREATE TABLE IF NOT EXISTS``);
2. rewrites it in a **canonical form**: no infra, timestamps at the epoch, ids derived from
   the content, objects sorted by name, deterministic serialization;
3. leaves ``registry.db`` untouched when the canonical bytes are equal to it (readers and
   DVC see no change), or renames the new file over it in one step.

The same definitions therefore always give the same bytes, in any folder (source paths are
relative to the project folder, see ``FeatureTables.source_path``): re-running the DVC stage,
running it after a plain ``feast apply``, or in a fresh clone elsewhere, changes nothing in
``dvc.lock`` and invalidates nothing downstream.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

from featureops.io import staged_outputs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from feast import FeatureStore
    from feast.repo_config import RepoConfig

# Tag of the Feast project in registries of featureops before source paths were relative:
# the absolute folder the registry was built for (it read that folder's Parquet). New
# registries carry no tag; an old one is refused in another folder.
ROOT_TAG = "featureops.project_root"


class RegistryLocationError(RuntimeError):
    """The registry was built for another project folder (the project was copied or moved)."""


@dataclass
class ApplyResult:
    registry: Path
    changed: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"registry": str(self.registry), "changed": self.changed, "seconds": self.seconds}


def project_root(repo: str | Path) -> Path:
    """The project folder holding a feature repo (``params.yaml``, ``dvc.yaml``, data)."""
    return Path(repo).resolve().parent


class StoreConfigError(ValueError):
    """feature_store.yaml does not validate (one line: the file, the field, the problem)."""


def feature_store(repo: str | Path) -> FeatureStore:
    """Feast's ``FeatureStore`` for ``repo``; a config Feast refuses is one clear line."""
    from feast import FeatureStore
    from feast.repo_config import FeastConfigError

    try:
        return FeatureStore(repo_path=str(repo))
    except FeastConfigError as exc:
        problem = _config_problem(exc)
        raise StoreConfigError(f"{Path(repo) / 'feature_store.yaml'}: {problem}") from None


def _config_problem(exc: Exception) -> str:
    """The first problem of Feast's feature_store.yaml validation, as ``field: message``."""
    cause = exc.args[0] if exc.args else exc
    errors = getattr(cause, "errors", None)
    if callable(errors) and errors():
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
        return f"{where}: {first.get('msg', 'invalid')}"
    return str(cause).splitlines()[0]


def load_config(repo: str | Path) -> RepoConfig:
    """The feature repo's ``feature_store.yaml`` as Feast reads it."""
    from feast.repo_config import load_repo_config

    repo = Path(repo).resolve()
    return load_repo_config(repo, repo / "feature_store.yaml")


def resolve_in_repo(repo: str | Path, path: str | Path) -> Path:
    """A path of ``feature_store.yaml`` (relative to the repo folder) as an absolute path."""
    path = Path(path)
    return path if path.is_absolute() else (Path(repo).resolve() / path).resolve()


def registry_file(config: RepoConfig, repo: str | Path) -> Path:
    path = getattr(config.registry, "path", config.registry)
    if "://" in str(path):
        raise ValueError(f"registry {path} is not a local file: only file registries are supported")
    return resolve_in_repo(repo, str(path))


# --------------------------------------------------------------------------- canonical form


def _normalize_timestamps(message: Any) -> None:
    """Every set Timestamp field of ``message`` (recursively) becomes the epoch (still set)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        values = value if _is_repeated(field) else [value]
        if field.message_type.full_name == "google.protobuf.Timestamp":
            for ts in values:
                ts.Clear()
                ts.SetInParent()
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue  # a map of scalars (tags)
            values = list(value.values())
        for item in values:
            _normalize_timestamps(item)


def _is_repeated(field: Any) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return field.label == field.LABEL_REPEATED


def _sort_key(message: Any) -> tuple:
    spec = getattr(message, "spec", None)
    if spec is not None and hasattr(spec, "name"):
        return (
            getattr(spec, "project", ""),
            spec.name,
            message.SerializeToString(deterministic=True),
        )
    name = getattr(message, "name", None) or getattr(message, "project", "")
    return (getattr(message, "project", ""), name, message.SerializeToString(deterministic=True))


def _copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _sort_repeated(container: Any, key: Any = _sort_key) -> None:
    items = sorted((_copy(m) for m in container), key=key)
    del container[:]
    container.extend(items)


def _version_record_proto(record: Any) -> Any:
    from feast.protos.feast.core.FeatureView_pb2 import FeatureView
    from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView
    from feast.protos.feast.core.StreamFeatureView_pb2 import StreamFeatureView

    kinds = {
        "feature_view": FeatureView,
        "on_demand_feature_view": OnDemandFeatureView,
        "stream_feature_view": StreamFeatureView,
    }
    try:
        from feast.protos.feast.core.LabelView_pb2 import LabelView

        kinds["label_view"] = LabelView
    except ImportError:  # pragma: no cover - older Feast
        pass
    return kinds.get(record.feature_view_type)


def canonical_registry(data: bytes) -> bytes:
    """The canonical bytes of a serialized Feast registry (independent of where it was built)."""
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = Registry()
    registry.ParseFromString(data)
    registry.ClearField("infra")  # absolute table locations: never recorded (see module doc)
    registry.version_id = ""
    for view in registry.feature_views:
        del view.meta.materialization_intervals[:]  # Feast's progress: not ours
    for view in registry.stream_feature_views:
        del view.meta.materialization_intervals[:]
    for meta in registry.project_metadata:
        meta.project_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"feast://{meta.project}"))
    history = registry.feature_view_version_history
    for record in history.records:
        proto_type = _version_record_proto(record)
        if proto_type is not None and record.feature_view_proto:
            snapshot = proto_type()
            snapshot.ParseFromString(record.feature_view_proto)
            _normalize_timestamps(snapshot)
            record.feature_view_proto = snapshot.SerializeToString(deterministic=True)
        record.version_id = str(
            uuid.uuid5(
                uuid.NAMESPACE_URL,
                f"feast://{record.project_id}/{record.feature_view_name}/{record.version_number}",
            )
        )
    _sort_repeated(
        history.records, key=lambda r: (r.project_id, r.feature_view_name, r.version_number)
    )
    _normalize_timestamps(registry)
    for field, value in registry.ListFields():
        if _is_repeated(field) and field.message_type is not None:
            _sort_repeated(value)
    body = registry.SerializeToString(deterministic=True)
    registry.version_id = hashlib.sha256(body).hexdigest()
    return registry.SerializeToString(deterministic=True)


def registry_root(store: FeatureStore) -> Path | None:
    """The project folder recorded in the store's registry (None: not recorded)."""
    try:
        project = store.get_project(store.project)
    except Exception:  # no project object (an old registry): nothing recorded
        return None
    recorded = (getattr(project, "tags", None) or {}).get(ROOT_TAG)
    return Path(recorded) if recorded else None


def check_registry_location(store: FeatureStore) -> None:
    """Raise :class:`RegistryLocationError` if the registry was built for another folder.

    Only registries built by earlier featureops versions record a folder (:data:`ROOT_TAG`):
    they name absolute Parquet paths, and in a copied or moved project would read the other
    folder's files. Current registries record relative paths and pass anywhere.
    """
    recorded = registry_root(store)
    here = project_root(store.repo_path)
    if recorded is not None and recorded != here:
        raise RegistryLocationError(
            f"the Feast registry was built for {recorded}, not this project folder ({here}): "
            "it was copied or moved. Rebuild it here with `dvc repro -f -s feast_apply`, "
            "then `dvc repro`."
        )


# --------------------------------------------------------------------------- apply


def _forget_definition_modules(repo: Path) -> None:
    """Drop definition modules (``feature_views``, ...) of any feature repo from sys.modules.

    Feast imports them as top-level modules by file name: a second apply in one process
    (another repo, or changed files) must not get the modules imported the first time.
    """
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and "." not in name and (Path(file).parent / "feature_store.yaml").exists():
            del sys.modules[name]


@contextmanager
def _in_repo(repo: Path) -> Iterator[None]:
    """Feast imports the definition files as top-level modules from the repo folder."""
    cwd = os.getcwd()
    _forget_definition_modules(repo)
    sys.path.insert(0, str(repo))
    os.chdir(repo)
    try:
        yield
    finally:
        os.chdir(cwd)
        if str(repo) in sys.path:
            sys.path.remove(str(repo))
        _forget_definition_modules(repo)


def _relative_code(code: CodeType, root: Path) -> CodeType:
    """``code`` (and the code it nests) naming its file relative to the project folder."""
    consts = tuple(
        _relative_code(c, root) if isinstance(c, CodeType) else c for c in code.co_consts
    )
    filename = code.co_filename
    if Path(filename).is_absolute() and Path(filename).is_relative_to(root):
        filename = Path(filename).relative_to(root).as_posix()
    return code.replace(co_filename=filename, co_consts=consts)


def _relative_udfs(on_demand_views: list[Any], root: Path) -> None:
    """Make on-demand views' transformations name their file relative to the project folder.

    Feast pickles the function by value, and a function records the absolute path of the
    file that defined it: without this the registry would differ per clone.
    """
    for view in on_demand_views:
        udf = getattr(getattr(view, "feature_transformation", None), "udf", None)
        if isinstance(udf, FunctionType):
            udf.__code__ = _relative_code(udf.__code__, root)


def apply_into(repo: str | Path, target: Path, config: RepoConfig | None = None) -> None:
    """Apply the definitions of ``repo`` with Feast into a new registry file ``target``."""
    from feast import FeatureStore
    from feast.repo_operations import _get_repo_contents, apply_total_with_repo_instance

    repo = Path(repo).resolve()
    config = config or load_config(repo)
    config.registry.path = str(target)
    with _in_repo(repo):
        contents = _get_repo_contents(repo, config.project, config)
        _relative_udfs(contents.on_demand_feature_views, project_root(repo))
        store = FeatureStore(config=config)
        apply_total_with_repo_instance(
            store, config.project, store.registry, contents, skip_source_validation=True
        )


def apply_repo(repo: str | Path) -> ApplyResult:
    """Apply ``repo``'s definitions; replace the registry atomically, and only if it changed."""
    started = time.perf_counter()
    repo = Path(repo).resolve()
    config = load_config(repo)
    registry = registry_file(config, repo)
    with staged_outputs(files=[registry]) as staged:
        new = staged.path(registry)
        apply_into(repo, new, config)
        data = canonical_registry(new.read_bytes())
        changed = not registry.exists() or registry.read_bytes() != data
        if changed:
            new.write_bytes(data)
        else:
            staged.keep(registry)
    return ApplyResult(registry, changed, round(time.perf_counter() - started, 3))
