"""`data check` and `data show` for a detection task's box files (edgemtl.data.boxes).

The check counts boxes per class, bins their sizes (the square root of the area, in the image file's
pixels: COCO's small / medium / large split at 32 and 96), and counts the boxes the loader would drop (no
area) or clip (partly outside the frame); unusable files and boxes wholly outside the image are problems.
`data show` draws each box with its class name over the frame. NumPy and OpenCV only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.boxes import BOXES_DIR, box_name, fit_boxes, parse_box_file
from edgemtl.errors import DataError
from edgemtl.kinds.base import empty_cell
from edgemtl.palette import class_colors
from edgemtl.tasks import TaskSpec

SIZE_BINS = (8, 16, 32, 64, 96, 128)  # edges of the size histogram, pixels


@dataclass
class BoxStats:
    """What one detection task's box files hold."""

    per_class: np.ndarray
    sizes: list[float] = field(default_factory=list)
    labelled: int = 0  # images with a box file ([] included)
    empty: int = 0  # of those, files listing no object
    dropped: int = 0
    clipped: int = 0


def box_dir(dataset: Path) -> Path:
    """Where a dataset's box files are: boxes/ of a folder, the manifest's own folder."""
    return dataset / BOXES_DIR if dataset.is_dir() else dataset.parent


def box_file(dataset: Path, task: TaskSpec, image: str, row: dict) -> Path | None:
    """The box file of a sample: its cell in the task's column, else boxes/<stem>.json where it exists."""
    folder = box_dir(dataset)
    if task.name in row:
        cell = row.get(task.name)
        return None if empty_cell(cell) else folder / str(cell).strip()
    default = folder / box_name(image)
    return default if default.is_file() else None


def check_boxes(
    stats: BoxStats,
    task: TaskSpec,
    path: Path | None,
    image: np.ndarray | None,
    problem: Callable[[str, str, str], None],
) -> None:
    """Count one sample's boxes into `stats`; `problem(what, expected, detail)` records what is unusable."""
    if path is None:
        return
    if not path.is_file():
        problem(f"box files of {task.name!r} missing", "expected every listed box file to exist", path.name)
        return
    try:
        entries = parse_box_file(path, task)
        size = image.shape[:2] if image is not None else (1 << 30, 1 << 30)
        fitted = fit_boxes(entries, size, path)
    except DataError as exc:
        problem(f"unusable box files of {task.name!r}", "expected boxes inside the image, with known classes", str(exc))
        return
    stats.labelled += 1
    stats.empty += not fitted.rows
    stats.dropped += fitted.dropped
    stats.clipped += fitted.clipped
    for class_id, (x1, y1, x2, y2) in fitted.rows:
        stats.per_class[class_id] += 1
        stats.sizes.append(float(np.sqrt((x2 - x1) * (y2 - y1))))


def box_lines(task: TaskSpec, stats: BoxStats, frames: int) -> tuple[list[str], list[str]]:
    """(statistics lines, warnings) of a detection task."""
    counts = ", ".join(f"{name} {int(n)}" for name, n in zip(task.classes, stats.per_class))
    lines = [
        f"{task.name} boxes: {counts} ({stats.labelled} images labelled, {stats.empty} of them with no object; "
        f"{frames - stats.labelled} unlabelled)"
    ]
    edges = (0, *SIZE_BINS, np.inf)
    histogram = np.histogram(stats.sizes, bins=edges)[0] if stats.sizes else np.zeros(len(edges) - 1, int)
    names = [f"<{SIZE_BINS[0]}"] + [f"{a}-{b}" for a, b in itertools.pairwise(SIZE_BINS)] + [f"≥{SIZE_BINS[-1]}"]
    lines.append(f"{task.name} box sizes (√area, px): " + ", ".join(f"{n} {c}" for n, c in zip(names, histogram)))
    lines.append(f"{task.name} degenerate boxes dropped: {stats.dropped}; boxes clipped at the frame: {stats.clipped}")
    warnings = [
        f"class {name!r} of {task.name!r} has no box: it cannot be learnt"
        for name, n in zip(task.classes, stats.per_class)
        if not n and stats.labelled
    ]
    return lines, warnings


def draw_boxes(image: np.ndarray, task: TaskSpec, path: Path | None) -> tuple[np.ndarray, str]:
    """The frame with a sample's boxes drawn in class colours, and a title line (how many, or why none)."""
    if path is None:
        return image, f"{task.name}: ?"
    try:
        rows = fit_boxes(parse_box_file(path, task), image.shape[:2], path).rows
    except DataError:
        return image, f"{task.name}: unusable box file"
    colors = class_colors(max(len(task.classes), 2))
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 300))
    for class_id, (x1, y1, x2, y2) in rows:
        color = tuple(int(c) for c in colors[class_id])
        cv2.rectangle(out, (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1), color, thickness)
        cv2.putText(
            out,
            task.classes[class_id],
            (round(x1), max(round(y1) - 2, 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.3 * thickness,
            color,
            1,
            cv2.LINE_AA,
        )
    return out, f"{task.name}: {len(rows)} boxes"
