"""Box targets on NumPy arrays: the padded per-image layout a detection task's dataset holds, and moving it.

One image's target is a float32 (MAX_BOXES, 5) array of rows [class_id, x1, y1, x2, y2] in the model
input's pixels (x right, y down, edges not pixel centres: a box over the whole W×H frame is 0, 0, W, H).
Rows past the image's objects are padding, class -1; an image whose boxes were not labelled is all NaN
(partial labels), so "labelled, no objects" (all padding) and "not labelled" stay apart all the way to the
loss and the meter. A fixed width keeps a batch one array, as every other kind's targets are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: Rows per image: the most objects one image's target holds. Files may list up to MAX_FILE_BOXES, the
#: loader keeps the MAX_BOXES largest (a count the check report states).
MAX_BOXES = 64
PADDING = -1.0  # the class id of a padding row
MIN_SIDE = 1.0  # a box thinner than this (in pixels, after clipping) is degenerate and dropped
MIN_VISIBLE = 0.25  # a box moved by augmentation keeps at least this share of its area in frame, or is dropped


def empty_target(labelled: bool = True) -> np.ndarray:
    """(MAX_BOXES, 5): all padding (labelled, no objects) or all NaN (not labelled)."""
    if not labelled:
        return np.full((MAX_BOXES, 5), np.nan, np.float32)
    target = np.zeros((MAX_BOXES, 5), np.float32)
    target[:, 0] = PADDING
    return target


def pack_boxes(objects: Iterable[tuple[int, Sequence[float]]]) -> np.ndarray:
    """[(class_id, (x1, y1, x2, y2)), ...] → one image's (MAX_BOXES, 5) target; past MAX_BOXES, the largest
    boxes are kept (the small ones are the likeliest to be noise)."""
    rows = [[float(c), *map(float, box)] for c, box in objects]
    target = empty_target()
    if rows:
        array = np.asarray(rows, np.float32)
        areas = (array[:, 3] - array[:, 1]) * (array[:, 4] - array[:, 2])
        keep = np.sort(np.argsort(-areas, kind="stable")[:MAX_BOXES])
        target[: len(keep)] = array[keep]
    return target


def labelled_images(targets: np.ndarray) -> np.ndarray:
    """(N,) bool: which images of (N, MAX_BOXES, 5) targets carry box labels (possibly none)."""
    return ~np.isnan(targets[:, 0, 0])


def objects_of(target: np.ndarray) -> np.ndarray:
    """One labelled image's real rows, (M, 5): padding and an unlabelled image give none."""
    return target[target[:, 0] >= 0]


def clip_boxes(rows: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows clipped to a frame of `size` (height, width), and which of them keep a side ≥ MIN_SIDE."""
    height, width = size
    rows = rows.copy()
    rows[:, [1, 3]] = rows[:, [1, 3]].clip(0, width)
    rows[:, [2, 4]] = rows[:, [2, 4]].clip(0, height)
    keep = (rows[:, 3] - rows[:, 1] >= MIN_SIDE) & (rows[:, 4] - rows[:, 2] >= MIN_SIDE)
    return rows, keep


def warp_target(target: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One image's target moved by the (2, 3) affine map of augmentation (pixel centres to pixel centres,
    edgemtl.data.augment), clipped to the frame; boxes left with less than MIN_VISIBLE of their area in frame
    are dropped. An unlabelled (NaN) target comes back as it is."""
    if np.isnan(target[0, 0]):
        return target
    rows = objects_of(target)
    if not len(rows):
        return target
    corners = rows[:, 1:5].reshape(-1, 2) - 0.5  # box edges → pixel-centre coordinates the matrix maps
    moved = corners @ matrix[:, :2].T + matrix[:, 2] + 0.5
    moved = moved.reshape(-1, 2, 2)
    low, high = moved.min(1), moved.max(1)  # a mirror swaps x1 and x2
    out = np.concatenate([rows[:, :1], low, high], axis=1).astype(np.float32)
    area = (out[:, 3] - out[:, 1]) * (out[:, 4] - out[:, 2])
    clipped, keep = clip_boxes(out, size)
    visible = (clipped[:, 3] - clipped[:, 1]) * (clipped[:, 4] - clipped[:, 2])
    keep &= visible >= MIN_VISIBLE * np.maximum(area, 1e-6)
    result = empty_target()
    result[: int(keep.sum())] = clipped[keep]
    return result


def scale_target(target: np.ndarray, scale_x: float, scale_y: float, offset_x: float = 0.0, offset_y: float = 0.0):
    """A target's boxes under x → x·scale_x + offset_x, y → y·scale_y + offset_y (a resize, or a letterbox's
    scale and padding); unlabelled stays NaN, padding stays padding."""
    out = target.copy()
    real = out[:, 0] >= 0
    out[real, 1] = out[real, 1] * scale_x + offset_x
    out[real, 3] = out[real, 3] * scale_x + offset_x
    out[real, 2] = out[real, 2] * scale_y + offset_y
    out[real, 4] = out[real, 4] * scale_y + offset_y
    return out
