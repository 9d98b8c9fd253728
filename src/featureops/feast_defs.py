"""Helpers for Feast definitions in ``feature_repo/``: sources and schemas of declared tables.

A feature repository imports these so its FileSources point at the transform stage's
Parquet and its Field types follow the declarations in ``params.yaml: features``::

    tables = FeatureTables.for_repo(__file__)
    sensor_source = tables.source("sensor_stats")
    schema = tables.schema("sensor_stats")

Nothing is read but ``params.yaml`` (and the repo's ``feature_store.yaml``): schemas come
from compiling the declarations over empty tables, so definitions can be applied before any
data exists. The kind of source follows the configured offline store: a ``SparkSource`` over
the same Parquet when ``offline_store.type`` is ``spark`` (Feast's Spark offline store and
compute engine read only SparkSources), a ``FileSource`` otherwise; switching engines is a
change of ``feature_store.yaml`` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureops.config import DEFAULT_PARAMS, ConfigError, load_params, source_specs
from featureops.conventions import CREATED, EVENT_TIMESTAMP, offline_store_kind

if TYPE_CHECKING:
    from feast import Field
    from feast.data_source import DataSource

    from featureops.features.spec import FeatureTableSpec


def feast_type(duckdb_type: str) -> Any:
    """The Feast type of a DuckDB column type (raises ConfigError for unsupported ones)."""
    from feast import types

    t = duckdb_type.upper()
    simple = {
        "BIGINT": types.Int64,
        "INTEGER": types.Int32,
        "SMALLINT": types.Int32,
        "TINYINT": types.Int32,
        "UBIGINT": types.Int64,
        "UINTEGER": types.Int64,
        "DOUBLE": types.Float64,
        "FLOAT": types.Float32,
        "REAL": types.Float32,
        "VARCHAR": types.String,
        "BOOLEAN": types.Bool,
        "TIMESTAMP WITH TIME ZONE": types.UnixTimestamp,
        "TIMESTAMPTZ": types.UnixTimestamp,
        "TIMESTAMP": types.UnixTimestamp,
    }
    if t in simple:
        return simple[t]
    if t.startswith("DECIMAL") or t == "HUGEINT":
        return types.Float64
    raise ConfigError(f"no Feast type for DuckDB type {duckdb_type!r}")


def offline_store_type(repo: str | Path) -> str:
    """``offline_store.type`` of a repo's feature_store.yaml (``file``, Feast's default).

    Feast's full class names of the Spark store count as ``spark``.
    """
    import yaml

    config_file = Path(repo) / "feature_store.yaml"
    if not config_file.exists():
        return "file"
    config = yaml.safe_load(config_file.read_text()) or {}
    offline = config.get("offline_store")
    kind = offline.get("type", "file") if isinstance(offline, dict) else offline or "file"
    return offline_store_kind(str(kind))


class FeatureTables:
    """The declared feature tables of one project, as Feast sources and schemas."""

    def __init__(
        self, params: dict[str, Any], root: str | Path, offline_store: str = "file"
    ) -> None:
        from featureops.features.spec import load_feature_tables

        self.params = params
        self.offline_store = offline_store
        self.root = Path(root).resolve()
        self.sources = source_specs(params)
        self.tables: dict[str, FeatureTableSpec] = load_feature_tables(params, self.sources)
        try:  # only paths.features: the feast_apply stage declares no other path
            self.features_dir = self.root / params["paths"]["features"]
        except (KeyError, TypeError):
            raise ConfigError("params.yaml: paths.features is required") from None

    @classmethod
    def for_repo(cls, repo_file: str | Path) -> FeatureTables:
        """Tables of the project that holds a feature repo (a file in it, or the folder)."""
        repo = Path(repo_file).resolve()
        repo = repo if repo.is_dir() else repo.parent
        root = repo.parent
        return cls(load_params(root / DEFAULT_PARAMS), root, offline_store_type(repo))

    def _spec(self, table: str) -> FeatureTableSpec:
        if table not in self.tables:
            raise ConfigError(
                f"feature table {table!r} is not declared in params.yaml: features "
                f"(declared: {sorted(self.tables)})"
            )
        return self.tables[table]

    def path(self, table: str) -> Path:
        """Absolute path of a table's Parquet."""
        self._spec(table)
        return (self.features_dir / f"{table}.parquet").resolve()

    def source_path(self, table: str) -> str:
        """The path a table's Feast source records.

        Relative to the project folder for a ``FileSource`` (``data/features/x.parquet``), so
        the registry is the same bytes in every clone: featureops resolves it against the
        project folder, and Feast's DuckDB offline store reads it relative to the working
        directory (the project folder, where DVC runs the stages). Absolute for Spark, whose
        readers resolve against the JVM's working directory.
        """
        path = self.path(table)
        if self.offline_store == "spark":
            return str(path)
        return os.path.relpath(path, self.root)

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of a table's feature columns (not keys or timestamps)."""
        from featureops.features.compiler import output_schema

        spec = self._spec(table)
        skip = {*spec.keys, EVENT_TIMESTAMP, CREATED}
        return [(n, t) for n, t in output_schema(spec, self.sources) if n not in skip]

    def source(self, table: str, description: str = "") -> DataSource:
        """A Feast source over the table's Parquet (event and created timestamps).

        A ``SparkSource`` (``file_format="parquet"``) when the repo's offline store is Spark,
        else a ``FileSource``: the same path, columns and name either way.
        """
        kwargs: dict[str, Any] = {
            "name": f"{table}_source",
            "path": self.source_path(table),
            "timestamp_field": EVENT_TIMESTAMP,
            "created_timestamp_column": CREATED,
            "description": description or f"Feature table {table} (params.yaml: features.{table}).",
        }
        if self.offline_store == "spark":
            from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
                SparkSource,
            )

            return SparkSource(file_format="parquet", **kwargs)
        from feast import FileSource

        return FileSource(**kwargs)

    def schema(self, table: str, only: list[str] | None = None) -> list[Field]:
        """Feast Fields of the table's features, or of ``only`` those, in that order."""
        from feast import Field

        types = dict(self.columns(table))
        names = list(types) if only is None else only
        unknown = [n for n in names if n not in types]
        if unknown:
            raise ConfigError(f"feature table {table!r} has no feature(s) {unknown}")
        return [Field(name=n, dtype=feast_type(types[n])) for n in names]

    def names(self, table: str, pattern: str | None = None) -> list[str]:
        """Feature names of a table, optionally those matching a regular expression."""
        import re

        names = [n for n, _ in self.columns(table)]
        return names if pattern is None else [n for n in names if re.fullmatch(pattern, n)]
