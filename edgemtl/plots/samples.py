"""A contact sheet of dataset samples: each frame with its masks painted as the runtime paints them and
its labels as a title (`edgemtl data show`), so a dataset can be judged by eye before hours of training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from edgemtl.plots.figures import new_figure, save_png
from edgemtl.plots.predictions import mask_legend, overlay_masks
from edgemtl.tasks import TaskSpec

TILE = 160  # pixels of a tile's longer side: frames of any size share one grid
COLUMNS = 4
_TILE_INCHES = 2.0


def _tile(image: np.ndarray) -> np.ndarray:
    """The RGB frame scaled so its longer side is TILE (nearest neighbour: masks stay crisp), padded white."""
    height, width = image.shape[:2]
    scale = TILE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    tile = np.full((TILE, TILE, 3), 255, np.uint8)
    tile[: scaled.shape[0], : scaled.shape[1]] = scaled
    return tile


def plot_contact_sheet(
    path: Path,
    tasks: Sequence[TaskSpec],
    images: Sequence[np.ndarray],
    masks: Sequence[Mapping[str, np.ndarray | None]],
    titles: Sequence[str],
) -> Path:
    """Frames (BGR, any sizes) with their masks (task → ids, None where absent) and titles, in a grid."""
    segmentation = [t for t in tasks if any(m.get(t.name) is not None for m in masks)]
    count = len(images)
    columns = min(COLUMNS, max(count, 1))
    rows = -(-count // columns)
    lines = max((title.count("\n") + 1 for title in titles), default=1)
    band = round(lines * 0.16 * TILE / _TILE_INCHES)
    mosaic = np.full((rows * (TILE + band), columns * (TILE + 4), 3), 255, np.uint8)
    width, height = columns * _TILE_INCHES * (TILE + 4) / TILE, rows * _TILE_INCHES * (TILE + band) / TILE + 0.4
    figure = new_figure(width, height, layout=None)
    axes = figure.add_axes((0, 0.4 / figure.get_figheight(), 1, 1 - 0.4 / figure.get_figheight()))
    axes.set_axis_off()
    for index, (image, sample_masks, title) in enumerate(zip(images, masks, titles, strict=True)):
        top, left = (index // columns) * (TILE + band) + band, (index % columns) * (TILE + 4)
        mosaic[top : top + TILE, left : left + TILE] = _tile(overlay_masks(image, segmentation, sample_masks))
        axes.text(left + TILE / 2, top - 1, title, ha="center", va="bottom", fontsize=7)
    axes.imshow(mosaic, interpolation="nearest", aspect="auto")
    mask_legend(figure, segmentation)
    return save_png(figure, path)
