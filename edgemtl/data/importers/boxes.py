"""Box labels as an import writes them: the loader's box rules applied to each box a tool labelled, and
boxes/<stem>.json written in the folder format (edgemtl.data.boxes, where the format and its rules live).

    my_dataset/boxes/<stem>.json     [{"class": "cone", "box": [x1, y1, x2, y2]}, ...]

An import applies the same rules the loader applies when it reads the files back (`fit_boxes`): a box
without area, or thinner than MIN_SIDE once clipped, is dropped and counted; a box partly outside its image
is clipped to it and counted; a box wholly outside is an error naming the tool's file and annotation. So
`data check` finds nothing to drop in what an import wrote, and the import's report states what it did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgemtl.data.boxes import MAX_FILE_BOXES, fit_boxes
from edgemtl.errors import DataError, OutputError
from edgemtl.kinds.boxes import MIN_SIDE
from edgemtl.tasks import TaskKind, TaskSpec

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass
class BoxCounts:
    """What the rules did to a set of boxes, for the import report."""

    kept: int = 0
    clipped: int = 0  # partly outside the image, clipped to it (kept unless then thinner than MIN_SIDE)
    dropped: int = 0  # no area, or thinner than MIN_SIDE once clipped

    def lines(self) -> list[str]:
        """One report line, or none when there were no boxes."""
        if not (self.kept or self.dropped):
            return []
        return [
            f"boxes: {self.kept} kept, {self.clipped} clipped (partly outside their image), "
            f"{self.dropped} dropped (no area, or under {MIN_SIDE:g} px once clipped)"
        ]


def fit_box(box: Sequence[float], width: int, height: int, where: str, counts: BoxCounts) -> Box | None:
    """The box clipped to the width×height image, or None when the loader's rules drop it; both counted.

    A box with a coordinate that is not a finite number, or wholly outside the image, is a DataError
    naming `where` (the tool's file and annotation)."""
    if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise DataError(f"{where} is {list(box)!r}: expected four finite numbers x1, y1, x2, y2 in pixels")
    corners = [float(v) for v in box]
    try:
        fitted = fit_boxes([(0, corners)], (height, width), Path(where))
    except DataError:  # the one error of the rules: the box lies wholly outside; named as the tool has it
        x1, y1, x2, y2 = corners
        raise DataError(
            f"{where} ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies wholly outside the {width}×{height} image: "
            "fix the box, or the image's width and height"
        ) from None
    counts.clipped += fitted.clipped
    counts.dropped += fitted.dropped
    if not fitted.rows:
        return None
    counts.kept += 1
    return fitted.rows[0][1]


def write_boxes(path: Path, boxes: Iterable[tuple[str, Box]]) -> None:
    """boxes/<stem>.json from (class name, box) pairs; `[]` when there are none (labelled, no objects)."""
    items = [{"class": name, "box": [round(float(v), 3) for v in box]} for name, box in boxes]
    if len(items) > MAX_FILE_BOXES:
        raise DataError(f"{path.name} would hold {len(items)} boxes: at most {MAX_FILE_BOXES} per image")
    try:
        path.write_text(json.dumps(items) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write box file {path}: {exc.strerror or exc}") from None


def detection_task(name: str, classes: Sequence[str]) -> TaskSpec:
    """The detection task of an import: its box classes, no background class."""
    return TaskSpec(name, TaskKind.DETECTION, tuple(classes))
