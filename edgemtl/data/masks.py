"""Segmentation masks on disk: indexed PNGs whose pixel values are class ids.

Why palette PNGs: the pixel values stay the class ids (lossless, one byte per pixel, read back exactly),
while the palette makes the same file open as a readable colour picture in any image viewer. Plain 8-bit
greyscale PNGs of class ids, as many labelling tools write, are accepted when reading. Pixel value 255
means "unlabelled" (edgemtl.tasks.IGNORE_PIXEL, as in Pascal VOC); it is drawn white.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgemtl import palette
from edgemtl.errors import DataError, OutputError
from edgemtl.tasks import IGNORE_PIXEL


def _palette_rgb(num_classes: int) -> np.ndarray:
    """(256, 3): the overlay colours (edgemtl.palette, BGR) in the PNG palette's order (RGB), unlabelled white."""
    try:
        colors = palette.class_colors(num_classes)[:, ::-1]
    except ValueError as exc:
        raise DataError(str(exc)) from None
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:num_classes] = colors
    table[IGNORE_PIXEL] = 255
    return table


def write_mask(path: Path | str, mask: np.ndarray, num_classes: int) -> None:
    """Write (H, W) class ids (255 where unlabelled) as an indexed PNG coloured like the overlays."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise DataError(f"mask for {path} has shape {mask.shape} and dtype {mask.dtype}: expected (H, W) integers")
    ids = mask[mask != IGNORE_PIXEL]
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
        low, high = int(ids.min()), int(ids.max())
        raise DataError(
            f"mask for {path} holds class ids {low}..{high}: expected 0..{num_classes - 1}, or {IGNORE_PIXEL} "
            "where unlabelled"
        )
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
    image.putpalette(_palette_rgb(num_classes).tobytes())
    try:
        image.save(path, format="PNG")
    except OSError as exc:
        raise OutputError(f"cannot write mask {path}: {exc.strerror or exc}") from None


def read_mask(path: Path | str) -> np.ndarray:
    """(H, W) uint8 class ids from an indexed (palette) or 8-bit greyscale PNG."""
    path = Path(path)
    expected = "expected an indexed (palette) or 8-bit greyscale PNG of class ids"
    try:
        with Image.open(path) as image:
            image.load()
            mode, file_format = image.mode, image.format
            pixels = np.asarray(image)
    except FileNotFoundError:
        raise DataError(f"mask {path} does not exist: {expected}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"mask {path} cannot be read ({exc}): {expected}") from None
    if file_format != "PNG" or mode not in ("P", "L"):
        raise DataError(f"mask {path} is a {file_format} image in mode {mode}: {expected}")
    return np.ascontiguousarray(pixels, dtype=np.uint8)
