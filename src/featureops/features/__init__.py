"""Declarative feature tables: ``params.yaml: features`` -> DuckDB SQL -> Feast-ready Parquet.

- :mod:`.spec`: typed declarations, validated before any data is read;
- :mod:`.compiler`: one DuckDB query per table (and the output schema, without data);
- :mod:`.dialect`: the compiler's SQL rendered for DuckDB or Spark SQL;
- :mod:`.build`: runs the queries per batch of whole entities and writes the tables;
- :mod:`.spark`: the same build on Spark (``transform.engine: spark``), same files.

See ``docs/feature-tables.md`` for the declaration format and its semantics.
"""

from featureops.features.build import (
    FeatureBuildError,
    build_feature_tables,
    write_feature_tables,
)
from featureops.features.compiler import compile_fit, compile_table, output_schema
from featureops.features.spec import (
    AsOfSpec,
    Duration,
    FeatureTableSpec,
    NormalizeSpec,
    WindowSpec,
    load_feature_tables,
    parse_duration,
)

__all__ = [
    "AsOfSpec",
    "Duration",
    "FeatureBuildError",
    "FeatureTableSpec",
    "NormalizeSpec",
    "WindowSpec",
    "build_feature_tables",
    "compile_fit",
    "compile_table",
    "load_feature_tables",
    "output_schema",
    "parse_duration",
    "write_feature_tables",
]
