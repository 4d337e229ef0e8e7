"""Reading metrics and history defensively: they come from run folders, which are user data, so a missing
or malformed value becomes a gap in a plot, never an exception."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def as_number(value: Any) -> float:
    """A history value as a float; NaN for anything missing or malformed, so one bad entry leaves a gap."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def lookup(entry: Any, *keys: str) -> Any:
    """entry[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(entry, Mapping):
            return None
        entry = entry.get(key)
    return entry
