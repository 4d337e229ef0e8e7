"""Box files of a detection task: `boxes/<stem>.json` in the folder format, read with bounds.

    [{"class": "cone", "box": [x1, y1, x2, y2]}, ...]    pixels of the image file, x right, y down

`[]` is an image labelled with no objects; no file (or an empty cell in the task's labels.csv column) is an
image whose boxes were not labelled. Files from other people are untrusted: at most MAX_FILE_BYTES and
MAX_FILE_BOXES boxes, an unknown class is an error naming the file, the box and the valid names, a box with
no area is dropped, a box partly outside the image is clipped (both counted), and a box wholly outside the
image is an error. NumPy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemtl.errors import DataError
from edgemtl.jsonfile import read_json
from edgemtl.kinds.boxes import MIN_SIDE, empty_target, pack_boxes, scale_target
from edgemtl.tasks import TaskSpec

MAX_FILE_BYTES = 1 << 20  # 1 MiB: 1000 boxes take about 60 kB
MAX_FILE_BOXES = 1000
BOXES_DIR = "boxes"


@dataclass
class BoxFile:
    """One image's boxes as its file gives them, in the file image's pixels."""

    rows: list[tuple[int, tuple[float, float, float, float]]]
    dropped: int = 0  # no area (x2 ≤ x1 or y2 ≤ y1, or thinner than a pixel once clipped)
    clipped: int = 0  # partly outside the image


def box_name(image_name: str) -> str:
    """The default box file of an image: boxes/<stem>.json."""
    return Path(image_name).with_suffix(".json").as_posix()


def parse_box_file(path: Path, task: TaskSpec) -> list[tuple[int, list[float]]]:
    """The (class id, [x1, y1, x2, y2]) entries of a box file, unclipped; a DataError naming what is wrong."""
    expected = 'expected [{"class": name, "box": [x1, y1, x2, y2]}, ...]'
    too_big = f"expected at most {MAX_FILE_BOXES} boxes"
    data = read_json(path, "box file", expected, max_bytes=MAX_FILE_BYTES, too_big=too_big)
    if not isinstance(data, list):
        raise DataError(f"box file {path} is not a list: {expected}")
    if len(data) > MAX_FILE_BOXES:
        raise DataError(f"box file {path} holds {len(data)} boxes: expected at most {MAX_FILE_BOXES}")
    entries = []
    for index, item in enumerate(data):
        box = item.get("box") if isinstance(item, dict) else None
        if not (
            isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
        ):
            raise DataError(
                f'box {index} of {path} is {item!r}: expected {{"class": name, "box": [x1, y1, x2, y2]}} '
                "with four finite numbers"
            )
        name = item.get("class")
        if name not in task.classes:
            raise DataError(
                f"box {index} of {path} has class {name!r}: expected one of {', '.join(task.classes)} "
                f"(task {task.name!r})"
            )
        entries.append((task.classes.index(name), [float(v) for v in box]))
    return entries


def fit_boxes(entries: list[tuple[int, list[float]]], image_size: tuple[int, int], path: Path) -> BoxFile:
    """Clip entries to the image, dropping the ones without area; a box wholly outside is an error."""
    height, width = image_size
    result = BoxFile([])
    for index, (class_id, (x1, y1, x2, y2)) in enumerate(entries):
        if x2 - x1 <= 0 or y2 - y1 <= 0:
            result.dropped += 1
            continue
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise DataError(
                f"box {index} of {path} is {[x1, y1, x2, y2]}, wholly outside its {height}x{width} (height x width) "
                "image: expected pixel coordinates of the image file, x1, y1, x2, y2"
            )
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        result.clipped += clipped != (x1, y1, x2, y2)
        if clipped[2] - clipped[0] < MIN_SIDE or clipped[3] - clipped[1] < MIN_SIDE:
            result.dropped += 1
            continue
        result.rows.append((class_id, clipped))
    return result


def load_box_target(
    path: Path | None, task: TaskSpec, image_size: tuple[int, int], size: tuple[int, int] | None
) -> np.ndarray:
    """One image's (MAX_BOXES, 5) target at the loader's size: all NaN without a file (not labelled)."""
    if path is None:
        return empty_target(labelled=False)
    target = pack_boxes(fit_boxes(parse_box_file(path, task), image_size, path).rows)
    if size is None or tuple(size) == tuple(image_size):
        return target
    return scale_target(target, size[1] / image_size[1], size[0] / image_size[0])


def write_box_file(path: Path, task: TaskSpec, target: np.ndarray) -> None:
    """One image's labelled target as a box file (the inverse of `load_box_target` at the image's size)."""
    rows = target[target[:, 0] >= 0]
    items = [{"class": task.classes[int(c)], "box": [round(float(v), 2) for v in box]} for c, *box in rows]
    path.write_text(json.dumps(items) + "\n", encoding="utf-8")
