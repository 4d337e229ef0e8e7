"""One colour per class id, shared by overlays (BGR, OpenCV) and mask PNGs (RGB palette).

NumPy and the standard library only, so both the runtime and the data package can use it.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

# Hand-picked (BGR) so the navigation classes read at a glance; more colours are generated.
_FIRST_COLORS_BGR = (
    (0, 0, 0),  # 0 background: black (left unpainted in overlays)
    (160, 64, 128),  # 1 path: purple
    (0, 220, 255),  # 2 lane: yellow
    (25, 25, 230),  # 3 obstacle: red
    (255, 144, 30),  # 4 blue
    (60, 200, 40),  # 5 green
    (0, 140, 255),  # 6 orange
    (210, 210, 0),  # 7 cyan
    (230, 50, 240),  # 8 magenta
    (250, 250, 250),  # 9 white
)
_MIN_DISTANCE = 90  # L1 distance in BGR below which two classes are hard to tell apart
_GOLDEN_RATIO = 0.618033988749895
MAX_CLASSES = 256  # a uint8 mask and a palette PNG hold at most 256 ids


@lru_cache(maxsize=32)  # called for every overlaid frame
def class_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 BGR colours, the same on every call and every machine.

    Beyond the hand-picked ones, hues step by the golden ratio over three brightness levels, and a
    candidate is kept only if it is far from every colour chosen so far (until spacing is impossible).
    """
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"cannot colour {num_classes} classes: expected 1..{MAX_CLASSES}")
    colors = list(_FIRST_COLORS_BGR[:num_classes])
    step = 0
    while len(colors) < num_classes:
        hue = (0.1 + step * _GOLDEN_RATIO) % 1.0
        value = (1.0, 0.75, 0.55)[step % 3]
        red, green, blue = (round(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.8, value))
        candidate = (blue, green, red)
        spacing = _MIN_DISTANCE if step < 50 * num_classes else 0
        if min(sum(abs(a - b) for a, b in zip(candidate, color)) for color in colors) >= spacing:
            colors.append(candidate)
        step += 1
    table = np.asarray(colors, dtype=np.uint8)
    table.flags.writeable = False  # shared by every caller through the cache
    return table
