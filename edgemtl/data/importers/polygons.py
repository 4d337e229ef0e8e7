"""The edge rule for every importer's polygons: clipped to the image where they cross its border, counted, and
an error only when nothing of them is inside.

Road and lane polygons routinely run past the frame's edge, and pycocotools and labelme's own converters
clip them. A polygon with nothing inside the image is a labelling mistake (a wrong image size, a shape
on the wrong frame), so it is refused with its file and annotation named rather than silently lost.
"""

from __future__ import annotations

import numpy as np

from edgemtl.errors import DataError

CLIPPED_POLYGONS = "polygons partly outside their image, clipped"  # the import report's count


def _clip_edge(points: np.ndarray, axis: int, limit: float, keep_below: bool) -> np.ndarray:
    """Sutherland–Hodgman against one border: the part of the polygon on the image's side of it."""
    if not len(points):
        return points
    inside = points[:, axis] <= limit if keep_below else points[:, axis] >= limit
    out = []
    for i in range(len(points)):
        a, b = points[i - 1], points[i]
        a_in, b_in = inside[i - 1], inside[i]
        if a_in != b_in:
            t = (limit - a[axis]) / (b[axis] - a[axis])
            out.append(a + t * (b - a))
        if b_in:
            out.append(b)
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_polygon(points: np.ndarray, width: int, height: int, where: str) -> tuple[np.ndarray, bool]:
    """(the polygon's part inside the width×height image, whether it was clipped); (N, 2) x, y in pixels.

    A polygon wholly outside the image (nothing of its area inside) is a DataError naming `where`."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, 0], points[:, 1]
    if not np.isfinite(points).all():
        raise DataError(f"{where} has a coordinate that is not a finite number: expected pixel coordinates")
    crossing = bool(x.min() < 0 or y.min() < 0 or x.max() > width or y.max() > height)
    if not crossing:
        return points, False
    clipped = points
    for axis, limit, below in ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True)):
        clipped = _clip_edge(clipped, axis, limit, below)
    if len(clipped) < 3 or (_area(clipped) == 0.0 and _area(points) > 0.0):
        raise_outside(where, points, width, height)
    return clipped, True


def check_extent(points: np.ndarray, width: int, height: int, where: str) -> bool:
    """Whether a shape drawn from `points` (a line, a circle's box, a point) crosses the border; error if none of
    it is inside the image (touching the border counts as inside)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, 0], points[:, 1]
    if x.max() < 0 or y.max() < 0 or x.min() > width or y.min() > height:
        raise_outside(where, points, width, height)
    return bool(x.min() < 0 or y.min() < 0 or x.max() > width or y.max() > height)


def raise_outside(where: str, points: np.ndarray, width: int, height: int) -> None:
    x, y = points[:, 0], points[:, 1]
    raise DataError(
        f"{where} lies wholly outside the {height}×{width} (height×width) image (x {x.min():g}..{x.max():g}, "
        f"y {y.min():g}..{y.max():g}): fix the shape, or the image's width and height"
    )
