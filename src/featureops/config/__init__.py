"""Configuration: ``params.yaml`` loaded once and checked, as typed objects.

- :mod:`.params`: loading, paths, stage command lines;
- :mod:`.sources`: raw sources (schema, read options, id checks);
- :mod:`.schema`: the schema of the platform's knobs, checked before a stage runs.
"""

from featureops.config.errors import ConfigError
from featureops.config.params import DEFAULT_PARAMS, Paths, load_params, stage_params
from featureops.config.sources import IdCheck, ReadOptions, SourceSpec, source_specs

__all__ = [
    "DEFAULT_PARAMS",
    "ConfigError",
    "IdCheck",
    "Paths",
    "ReadOptions",
    "SourceSpec",
    "load_params",
    "source_specs",
    "stage_params",
]
