"""Box labels in the folder format, and the rules every reader of them applies.

    my_dataset/boxes/<stem>.json     [{"class": "cone", "box": [x1, y1, x2, y2]}, ...]

Pixels of the image file, floats, x right, y down. `[]` is an image labelled as holding no objects; no
file (or an empty cell in labels.csv's detection column) is an image whose boxes were not labelled.

The rules, the same for every importer and for the dataset loader: a box of zero or negative size is
dropped and counted; a box partly outside its image is clipped to it and counted; a box wholly outside
is an error naming the file and the box. A file holds at most MAX_BOXES boxes and MAX_FILE_BYTES bytes
(files come from other people); an unknown class is an error naming the file, the box and the classes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.errors import DataError, OutputError

BOXES_FOLDER = "boxes"
DETECTION_KIND = "detection"
MAX_BOXES = 1000  # boxes in one file
MAX_FILE_BYTES = 256 * 1024  # 1000 boxes at ~80 characters each, with room

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass
class BoxCounts:
    """What the rules did to a set of boxes, for the import and check reports."""

    kept: int = 0
    clipped: int = 0  # partly outside the image, clipped to it (and kept)
    dropped: int = 0  # zero or negative size

    def add(self, other: BoxCounts) -> None:
        self.kept += other.kept
        self.clipped += other.clipped
        self.dropped += other.dropped

    def lines(self) -> list[str]:
        """One report line, or none when there were no boxes."""
        if not (self.kept or self.dropped):
            return []
        return [
            f"boxes: {self.kept} kept, {self.clipped} clipped (partly outside their image), "
            f"{self.dropped} dropped (zero or negative size)"
        ]


def fit_box(box: Sequence[float], width: int, height: int, where: str, counts: BoxCounts) -> Box | None:
    """The box clipped to the width×height image, or None when it has no size (dropped); both counted.

    A box with a coordinate that is not a finite number, or wholly outside the image, is a DataError
    naming `where` (the file and the box)."""
    if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise DataError(f"{where} is {list(box)!r}: expected four finite numbers x1, y1, x2, y2 in pixels")
    x1, y1, x2, y2 = (float(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        counts.dropped += 1
        return None
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise DataError(
            f"{where} ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies wholly outside the {width}×{height} image: "
            "fix the box, or the image's width and height"
        )
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped != (x1, y1, x2, y2):
        counts.clipped += 1
    counts.kept += 1
    return clipped


def write_boxes(path: Path, boxes: Iterable[tuple[str, Box]]) -> None:
    """boxes/<stem>.json from (class name, box) pairs; `[]` when there are none (labelled, no objects)."""
    items = [{"class": name, "box": [round(float(v), 3) for v in box]} for name, box in boxes]
    if len(items) > MAX_BOXES:
        raise DataError(f"{path.name} would hold {len(items)} boxes: at most {MAX_BOXES} per image")
    try:
        path.write_text(json.dumps(items) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write box file {path}: {exc.strerror or exc}") from None


def _load(path: Path) -> list[Any]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(f"box file {path} is {size} bytes: at most {MAX_FILE_BYTES} ({MAX_BOXES} boxes)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"box file {path} is not readable JSON ({exc}): expected a list of boxes") from None
    if not isinstance(data, list):
        raise DataError(f'box file {path} is not a list: expected [{{"class": "cone", "box": [x1, y1, x2, y2]}}]')
    if len(data) > MAX_BOXES:
        raise DataError(f"box file {path} holds {len(data)} boxes: at most {MAX_BOXES} per image")
    return data


def read_boxes(path: Path, classes: Sequence[str], width: int, height: int, counts: BoxCounts) -> np.ndarray:
    """(n, 5) float32 rows [class id, x1, y1, x2, y2] in the image file's pixels, the rules applied and counted."""
    rows = []
    for index, item in enumerate(_load(path)):
        where = f"box file {path} box {index}"
        if not isinstance(item, dict) or "class" not in item or not isinstance(item.get("box"), list):
            raise DataError(f'{where} is {str(item)[:60]}: expected {{"class": name, "box": [x1, y1, x2, y2]}}')
        name = str(item["class"])
        if name not in classes:
            raise DataError(f"{where} has class {name!r}: expected one of {', '.join(classes)}")
        box = fit_box(item["box"], width, height, where, counts)
        if box is not None:
            rows.append((classes.index(name), *box))
    return np.asarray(rows, dtype=np.float32).reshape(-1, 5)


def detection_task(name: str, classes: Sequence[str]) -> dict[str, Any]:
    """The tasks.json entry of a detection task (no background class).

    A plain dict, not a TaskSpec, until edgemtl.tasks.TaskKind has DETECTION; then this becomes
    TaskSpec(name, TaskKind.DETECTION, tuple(classes)).to_dict()."""
    return {"name": name, "kind": DETECTION_KIND, "classes": list(classes), "weight": 1.0}
