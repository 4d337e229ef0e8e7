"""Output folders that never overwrite earlier results. Standard library only."""

from __future__ import annotations

from pathlib import Path

from edgemtl.errors import OutputError


def fresh_dir(base: Path) -> Path:
    """`base` if it is new or empty, else base2, base3, ...: earlier results are never overwritten."""
    base = Path(base)
    candidate, number = base, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        number += 1
        candidate = base.with_name(f"{base.name}{number}")
    try:
        candidate.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {candidate}: {exc.strerror}") from None
    return candidate
