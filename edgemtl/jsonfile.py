"""JSON in and out of edgemtl: files read with a size bound and one-line errors, text written as strict JSON.

Files from other people are untrusted: `read_json` refuses one over its bound before parsing it, and every
failure is one line naming the file and what was expected. What edgemtl writes must parse in every strict
reader (JavaScript's JSON.parse, jq, Go, a browser), but Python's json writes a float that is not finite as a
bare NaN or Infinity, which is not JSON (RFC 8259): a metric with no samples is NaN, so `dumps` writes every
non-finite float as null instead. Standard library only: the runtime uses it.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

from edgemtl.errors import DataError, EdgemtlError

MAX_JSON_BYTES = 64 << 20  # 64 MiB: a label or map file is kB; a large source passes its own bound


def read_json(
    path: Path,
    what: str,
    expected: str,
    *,
    error: type[EdgemtlError] = DataError,
    max_bytes: int = MAX_JSON_BYTES,
    too_big: str | None = None,
) -> Any:
    """The parsed contents of a UTF-8 JSON file, or `error` in one line: '<what> <path> ...: <expected>'.

    A file over `max_bytes` is refused unread (`too_big`, default `expected`, says what fits)."""
    try:
        if path.stat().st_size > max_bytes:
            raise error(f"{what} {path} is over {_size(max_bytes)}: {too_big or expected}")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path} ({exc}): {expected}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}): {expected}") from None
    except RecursionError:
        raise error(f"{what} {path} is nested too deeply to read: {expected}") from None


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count >= 1 << 20 else f"{count >> 10} kB"


def finite_or_null(value: Any) -> Any:
    """`value` with every float that is not finite (NaN, ±inf) replaced by None, through dicts, lists and tuples.

    Other floats (NumPy's too, which are numbers.Real) come back as Python floats; everything else as it is."""
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON text of `value` (json.dumps' `options`): a NaN or infinity is written as null, never bare."""
    return json.dumps(finite_or_null(value), allow_nan=False, **options)
