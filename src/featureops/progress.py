"""Progress bars for long work a person waits for (ingest, materialize, frames, bench).

Bars go to stderr and show only on an interactive terminal: quiet in CI, in DVC logs
piped to a file and under pytest. `FEATUREOPS_PROGRESS=1` forces them on, `=0` off.
Other libraries' bars (Great Expectations, DVC) are governed separately.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

ENV_SWITCH = "FEATUREOPS_PROGRESS"


def enabled() -> bool:
    """True when bars should be drawn: forced by the env switch, else stderr is a TTY and not CI."""
    forced = os.environ.get(ENV_SWITCH)
    if forced is not None:
        return forced.strip().lower() not in ("", "0", "false", "no", "off")
    if os.environ.get("CI"):
        return False
    return sys.stderr.isatty()


def track(items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
    """Yield `items`, drawing a bar with `description` when `enabled()`."""
    if not enabled():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    yield from rich_track(
        items,
        description=description,
        total=total,
        console=Console(stderr=True),
        transient=False,
    )


@contextmanager
def working(description: str) -> Iterator[None]:
    """While one long step runs (a frame's point-in-time join), a spinner with the elapsed
    time, when `enabled()`; it stays as one finished line."""
    if not enabled():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(finished_text="done"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=1)
        yield
        bar.update(task, completed=1)
