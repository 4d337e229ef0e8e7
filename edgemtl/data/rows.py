"""Rows of a listing: (where, {column: value}) from a CSV file or a JSON list of samples.

A listing is user data: its header, field counts, encoding and keys are checked row by row, and a problem is
one DataError naming the file and the line (or sample) and what was expected.
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path
from typing import Any

from edgemtl.errors import DataError
from edgemtl.jsonfile import read_json as read_json_file
from edgemtl.tasks import TaskSpec

#: Optional columns (keys in JSON) beside the tasks': which split a sample belongs to, and its group
#: (sequence, track, session), which the automatic split keeps on one side.
SPLIT_COLUMN, GROUP_COLUMN = "split", "group"
_SHOWN = 3  # offending entries named in one message
MAX_MANIFEST_BYTES = 512 << 20


def fail_if_any(bad: list[str], what: str, expected: str) -> None:
    """One line for a whole kind of problem: how many, the first few of them, what was expected."""
    if bad:
        more = ", ..." if len(bad) > _SHOWN else ""
        raise DataError(f"{len(bad)} {what} (first: {', '.join(bad[:_SHOWN])}{more}): {expected}")


def read_json(path: Path) -> Any:
    """A JSON manifest's contents (bounded: one of a million samples takes about 100 MB)."""
    return read_json_file(path, "manifest", "expected a UTF-8 JSON manifest", max_bytes=MAX_MANIFEST_BYTES)


Row = tuple[str, dict[str, Any]]  # ("line 4" or "samples[2]", the sample's values by column / key)


def read_csv_rows(path: Path, needed: list[str]) -> list[Row]:
    """Every non-empty row, after checking the header names each needed column."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row:  # DictReader files surplus fields under None
                    raise DataError(
                        f"{path} line {reader.line_num} has {len(header) + len(row[None])} fields: "
                        f"expected {len(header)}, as in the header"
                    )
                if None in row.values():  # DictReader fills the fields a short row lacks with None
                    cells = sum(v is not None for v in row.values())
                    raise DataError(
                        f"{path} line {reader.line_num} has {cells} fields: expected {len(header)}, as in the "
                        "header (leave a cell empty, with its comma, for a missing label)"
                    )
                if any((v or "").strip() for v in row.values()):
                    rows.append((f"line {reader.line_num}", row))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {path} ({exc}): expected a UTF-8 CSV file") from None
    missing = [name for name in needed if name not in header]
    if missing:
        raise DataError(f"{path} has columns {header}, lacking {missing}: expected header {','.join(needed)}")
    return rows


def _suggestion(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, 1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_json_rows(path: Path, tasks: tuple[TaskSpec, ...]) -> list[Row]:
    data = read_json(path)
    samples = data.get("samples") if isinstance(data, dict) else data
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise DataError(
            f'{path} holds no list of samples: expected [{{"image": ...}}, ...] or '
            '{"tasks": [...], "samples": [{"image": ...}, ...]}'
        )
    known = ["image", SPLIT_COLUMN, GROUP_COLUMN, *(t.name for t in tasks)]
    unknown = [
        f"samples[{i}] key {key!r}" + _suggestion(key, known)
        for i, sample in enumerate(samples)
        for key in sample
        if key not in known
    ]
    fail_if_any(unknown, f"unknown keys in {path}", f"expected keys {', '.join(known)}")
    return [(f"samples[{i}]", sample) for i, sample in enumerate(samples)]
