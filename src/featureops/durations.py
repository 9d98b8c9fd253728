"""Durations written in config: ``90s``, ``30m``, ``6h``, ``7d``, ``forward 24h``."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_DURATION = re.compile(r"(forward\s+)?([0-9]+)([smhd])")


@dataclass(frozen=True)
class Duration:
    """A window length: ``text`` as written (``"24h"``), in microseconds; ``forward`` looks ahead."""

    text: str
    micros: int
    forward: bool = False

    def __str__(self) -> str:
        return f"forward {self.text}" if self.forward else self.text


def parse_duration(text: str, allow_zero: bool = False) -> Duration:
    """``"7d"``, ``"90m"``, ``"forward 24h"`` -> :class:`Duration` (units s, m, h, d).

    Raises ValueError for anything else, and for zero unless ``allow_zero``.
    """
    match = _DURATION.fullmatch(str(text).strip())
    amount_text = match.group(2) if match else ""
    zero = amount_text == "0"
    if not match or (zero and not allow_zero) or (amount_text.startswith("0") and not zero):
        raise ValueError(f"bad window {text!r}: expected e.g. 90m, 6h, 7d or 'forward 24h'")
    forward, amount, unit = match.groups()
    return Duration(f"{amount}{unit}", int(amount) * UNIT_US[unit], forward is not None)
