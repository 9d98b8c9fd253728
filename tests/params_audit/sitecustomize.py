"""Record which params.yaml keys a process reads (tests put this folder on PYTHONPATH).

Active only when ``FEATUREOPS_PARAMS_AUDIT`` names a folder: ``featureops.config.load_params``
then returns a dict that logs every key path read, and at exit the process writes
``<folder>/<pid>.json`` with its command line and the paths. Iterating a mapping counts as
reading all of it.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path
from typing import Any

_FOLDER = os.environ.get("FEATUREOPS_PARAMS_AUDIT")


class TrackedParams(dict):
    """A dict that adds the dotted path of every key read to a shared log."""

    def __init__(self, data: dict, path: str, log: set[str]) -> None:
        super().__init__(data)
        self._path, self._log = path, log

    def _key(self, key: Any) -> str:
        return f"{self._path}.{key}" if self._path else str(key)

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, dict):
            return TrackedParams(value, self._key(key), self._log)
        self._log.add(self._key(key))
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return self[key]
        self._log.add(self._key(key))
        return default

    def _all(self) -> None:
        self._log.add(self._path or "*")

    def __iter__(self):
        self._all()
        return super().__iter__()

    def items(self):
        self._all()
        return super().items()

    def values(self):
        self._all()
        return super().values()

    def keys(self):
        self._all()
        return super().keys()


def _install(folder: Path) -> None:
    import featureops.config as config
    import featureops.config.params as params_module

    log: set[str] = set()
    original = params_module.load_params

    def load_params(*args: Any, **kwargs: Any) -> dict:
        return TrackedParams(original(*args, **kwargs), "", log)

    config.load_params = load_params  # `from featureops.config import load_params`
    params_module.load_params = load_params  # stage_params

    import featureops.config.schema as schema  # the schema check reads everything: not a use

    original_check = schema.check_params

    def check_params(params: dict, *args: Any, **kwargs: Any) -> Any:
        return original_check(dict(dict.items(params)), *args, **kwargs)

    schema.check_params = check_params

    def dump() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        record = {"argv": sys.argv, "read": sorted(log)}
        (folder / f"{os.getpid()}.json").write_text(json.dumps(record))

    atexit.register(dump)


if _FOLDER:
    _install(Path(_FOLDER))
