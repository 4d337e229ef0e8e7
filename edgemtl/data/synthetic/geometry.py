"""What a scene is: the numbers that define it (`SceneParams`), its size-free geometry, and its label.

Geometry lives in size-free coordinates: x and y are fractions of the image width and height (0 = left /
top, 1 = right / bottom). A row y below the horizon sees the ground at *depth* s = (y - horizon) /
(1 - horizon): 1 on the bottom row, 0 at the horizon. s is an inverse distance, so widths on the ground
shrink linearly with it, which is what makes the path narrow towards a vanishing point. Rendering samples
this geometry at pixel centres, hence any size, square or not, shows the same scene.

One module for the geometry that the sampler, the renderer, the targets and the drives all share, so the
image, the mask and every label are computed from the same formulas and cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemtl.tasks import NAVIGATION_DIRECTIONS

Color = tuple[int, int, int]  # B, G, R: the network sees BGR frames, as a camera hands them over
_Point = tuple[float, float]  # (x, y), fractions of the width and height
_Shapes = tuple[list[list[_Point]], list[tuple[_Point, _Point]]]  # polygons; ellipses as (centre, semi-axes)

LEFT, STRAIGHT, RIGHT, BLOCKED = (NAVIGATION_DIRECTIONS.index(d) for d in ("left", "straight", "right", "blocked"))

# The labelling rule. Sampling keeps clear of these thresholds (the bands in sampling.py), so the label of
# a sampled scene is never a coin toss; drive_sequence crosses them smoothly.
CURVE_THRESHOLD = 0.3  # |curvature| from which the path counts as bending left / right
BLOCKING_ROW = 0.6  # an obstacle whose base is below this row (fraction of height) is near...
BLOCKING_OVERLAP = 0.35  # ...and blocks the path when it covers at least this fraction of the path's width

_CURVE_GAIN = 0.5  # sideways shift of the path's far end at |curvature| = 1, fraction of the width


@dataclass(frozen=True)
class Obstacle:
    """One obstacle standing on the ground.

    Lateral position and size are in *path half-widths* (0 = the path's centre line, ±1 = its edges) so
    that whether an obstacle stands on the path does not depend on how far away it is.
    """

    depth: float  # depth s of its base: 1 = bottom row, 0 = horizon (> 1: below the frame)
    offset: float  # centre, in path half-widths from the path's centre (negative: left)
    half_width: float  # in path half-widths
    aspect: float  # height / width
    shape: str  # "box", "blob" or "cone"
    color: Color


@dataclass(frozen=True)
class SceneParams:
    """Everything that defines one scene; `render_scene` turns it into image, mask and label."""

    curvature: float  # -1 (sharp left) .. 1 (sharp right)
    horizon: float  # row of the horizon, fraction of the height
    vanish_x: float  # where the path would meet the horizon were it straight, fraction of the width
    bottom_x: float  # centre of the path on the bottom row, fraction of the width
    path_half_width: float  # on the bottom row, fraction of the width
    centre_line: str  # "none", "dashed" or "solid"
    edge_lines: bool
    line_half_width: float  # of a marking on the bottom row, fraction of the width
    dash_period: float  # dash + gap of a dashed line, in units of the bottom row's distance
    travel: float  # distance driven: scrolls dashes and ground texture (drive_sequence moves it)
    obstacles: tuple[Obstacle, ...]
    sky_top: Color
    sky_horizon: Color
    hills: Color
    ground: Color
    path: Color
    line: Color
    hill_height: float  # fraction of the height
    haze: float  # 0..1, how much the distance fades to the sky's colour
    texture_seed: int
    texture_strength: float
    brightness: float  # added after contrast, fraction of full scale
    contrast: float
    gamma: float
    white_balance: tuple[float, float, float]  # per-channel gains, B, G, R
    noise_sigma: float  # sensor noise, fraction of full scale
    noise_seed: int
    blur_sigma: float  # in pixels of a 128-pixel-high frame; scaled with the size


def _row_of(depth: float | np.ndarray, horizon: float) -> float | np.ndarray:
    return horizon + depth * (1.0 - horizon)


def _depth_of(row: float | np.ndarray, horizon: float) -> float | np.ndarray:
    return (row - horizon) / (1.0 - horizon)


def _path_centre(params: SceneParams, depth: float | np.ndarray) -> float | np.ndarray:
    """Straight from bottom_x to vanish_x, plus a bend that grows towards the horizon (pseudo-3D road)."""
    straight = params.vanish_x + (params.bottom_x - params.vanish_x) * depth
    return straight + params.curvature * _CURVE_GAIN * (1.0 - depth) ** 2


def _path_half_width(params: SceneParams, depth: float | np.ndarray) -> float | np.ndarray:
    return params.path_half_width * depth


def _path_overlap(obstacle: Obstacle) -> float:
    """Fraction of the path's width the obstacle's base covers."""
    left = max(obstacle.offset - obstacle.half_width, -1.0)
    right = min(obstacle.offset + obstacle.half_width, 1.0)
    return max(right - left, 0.0) / 2.0


def _blocks_path(params: SceneParams, obstacle: Obstacle) -> bool:
    base = _row_of(obstacle.depth, params.horizon)
    return BLOCKING_ROW <= base <= 1.0 and _path_overlap(obstacle) >= BLOCKING_OVERLAP


def scene_label(params: SceneParams) -> int:
    """The direction label: blocked by a near obstacle on the path, else the way the path bends."""
    if any(_blocks_path(params, obstacle) for obstacle in params.obstacles):
        return BLOCKED
    if params.curvature <= -CURVE_THRESHOLD:
        return LEFT
    if params.curvature >= CURVE_THRESHOLD:
        return RIGHT
    return STRAIGHT


def _placement(params: SceneParams, obstacle: Obstacle) -> tuple[float, float, float]:
    """(centre x, base row, half-width) of an obstacle, in fractions of the frame."""
    half_path = _path_half_width(params, obstacle.depth)
    x = _path_centre(params, obstacle.depth) + obstacle.offset * half_path
    return x, _row_of(obstacle.depth, params.horizon), obstacle.half_width * half_path


def _obstacle_shapes(params: SceneParams, obstacle: Obstacle) -> _Shapes:
    """The obstacle's outline as polygons and ellipses."""
    x, base, half = _placement(params, obstacle)
    tall = 2.0 * half * obstacle.aspect
    if obstacle.shape == "box":
        front = [(x - half, base), (x + half, base), (x + half, base - tall), (x - half, base - tall)]
        lid = 0.2 * tall
        top = [
            (x - half, base - tall),
            (x + half, base - tall),
            (x + 0.8 * half, base - tall - lid),
            (x - 0.8 * half, base - tall - lid),
        ]
        return [front, top], []
    if obstacle.shape == "cone":
        return [
            [
                (x - half, base),
                (x + half, base),
                (x + 0.15 * half, base - tall),
                (x - 0.15 * half, base - tall),
            ]
        ], []
    return [], [
        ((x, base - tall / 2), (half, tall / 2)),
        ((x - 0.3 * half, base - 0.7 * tall), (0.6 * half, 0.35 * tall)),
    ]
