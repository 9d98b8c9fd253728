"""Pause a stage process at a chosen point so a test can ``kill -9`` it there.

Tests put this folder on ``PYTHONPATH``. Active only when ``FEATUREOPS_CRASH_AT`` is set, to
``module:attribute[.attribute][:n]``: the n-th call (default 1) of that function first writes
``FEATUREOPS_CRASH_MARKER`` (the process id) and then sleeps; the test sees the marker and
sends SIGKILL. Nothing of this lives in library code: the function is wrapped from outside.
"""

from __future__ import annotations

import functools
import importlib
import os
import time
from pathlib import Path

_AT = os.environ.get("FEATUREOPS_CRASH_AT")
_MARKER = os.environ.get("FEATUREOPS_CRASH_MARKER")


def _install(spec: str, marker: Path) -> None:
    module_name, _, rest = spec.partition(":")
    attr_path, _, nth = rest.partition(":")
    nth_call = int(nth or 1)
    owner = importlib.import_module(module_name)
    *parents, name = attr_path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = 0

    @functools.wraps(original)
    def paused(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == nth_call:
            tmp = marker.with_name(marker.name + ".tmp")
            tmp.write_text(str(os.getpid()))
            tmp.rename(marker)
            time.sleep(3600)  # the test kills us here
        return original(*args, **kwargs)

    setattr(owner, name, paused)


if _AT and _MARKER:
    _install(_AT, Path(_MARKER))
