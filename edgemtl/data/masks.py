"""Segmentation masks on disk: indexed PNGs whose pixel values are class ids.

Why palette PNGs: the pixel values stay the class ids (lossless, one byte per pixel, read back exactly),
while the palette makes the same file open as a readable colour picture in any image viewer. Plain 8-bit
greyscale PNGs of class ids, as many labelling tools write, are accepted when reading.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgemtl.errors import DataError, OutputError

# Hand-picked for the navigation classes (background, path, lane, obstacle) and a few more, then generated.
_FIRST_COLORS = (
    (0, 0, 0),  # background: black
    (128, 64, 160),  # path: purple
    (255, 220, 0),  # lane: yellow
    (230, 25, 25),  # obstacle: red
    (30, 144, 255),  # blue
    (40, 200, 60),  # green
    (255, 140, 0),  # orange
    (0, 210, 210),  # cyan
    (240, 50, 230),  # magenta
    (250, 250, 250),  # white
)
_MAX_CLASSES = 256  # a palette PNG holds at most 256 colours, a uint8 mask at most 256 ids


def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 RGB colours, one per class id, the same on every call.

    Beyond the hand-picked first ones, hues step by the golden ratio so neighbouring ids stay distinct.
    """
    if not 1 <= num_classes <= _MAX_CLASSES:
        raise DataError(f"cannot colour {num_classes} classes: expected 1..{_MAX_CLASSES}")
    colors = list(_FIRST_COLORS[:num_classes])
    golden = (5**0.5 - 1) / 2
    for i in range(num_classes - len(colors)):
        hue = (0.1 + i * golden) % 1.0
        value = (1.0, 0.75, 0.55)[i % 3]
        colors.append(tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.8, value)))
    return np.asarray(colors, dtype=np.uint8)


def write_mask(path: Path | str, mask: np.ndarray, num_classes: int) -> None:
    """Write (H, W) class ids as an indexed PNG coloured by `class_colors`."""
    path = Path(path)
    mask = np.asarray(mask)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise DataError(
            f"mask for {path} has shape {mask.shape} and dtype {mask.dtype}: expected (H, W) integers"
        )
    if mask.size and (int(mask.min()) < 0 or int(mask.max()) >= num_classes):
        low, high = int(mask.min()), int(mask.max())
        raise DataError(f"mask for {path} holds class ids {low}..{high}: expected 0..{num_classes - 1}")
    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.astype(np.uint8).tobytes())
    image.putpalette(class_colors(num_classes).tobytes())
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
