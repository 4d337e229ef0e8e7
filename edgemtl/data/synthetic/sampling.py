"""Random scenes: `sample_scene_params` draws every number of a `SceneParams` from a generator.

Kept apart from the drawing code because it fixes the random streams: the same generator state gives the
same scene, so every change here changes every dataset, while rendering can change without touching them.
drive_sequence reuses the curvature and obstacle draws for its moving scenes.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np

from edgemtl.data.synthetic.geometry import (
    BLOCKED,
    LEFT,
    STRAIGHT,
    Color,
    Obstacle,
    SceneParams,
    _depth_of,
    _path_centre,
    _path_half_width,
    _row_of,
)
from edgemtl.data.synthetic.tasks import OBSTACLE_SHAPES
from edgemtl.errors import ConfigError
from edgemtl.tasks import NAVIGATION_DIRECTIONS

# Bands that keep sampled scenes clear of the labelling thresholds (geometry.py)
_BEND_BAND = (0.45, 1.0)  # |curvature| of sampled left / right scenes
_STRAIGHT_BAND = 0.12  # |curvature| of sampled straight scenes
_NEAR_BASE_ROWS = (0.68, 0.95)  # base row of a sampled blocking obstacle
_FAR_BASE_ROW = 0.54  # lowest base row of a sampled obstacle that stands on the path but far away
_MIN_OBSTACLE_WIDTH = 0.0625  # fraction of the width: 8 px at 128 px, so obstacles stay learnable


def _jitter(rng: np.random.Generator, color: Color, spread: float) -> Color:
    """A colour near `color`: overall brightness and per-channel tint both vary."""
    scale = rng.uniform(0.8, 1.2)
    values = np.asarray(color, dtype=np.float64) * scale + rng.uniform(-spread, spread, 3)
    return tuple(int(v) for v in np.clip(values, 0, 255))  # type: ignore[return-value]


def _distance(a: Color, b: Color) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


_PATH_COLORS: tuple[Color, ...] = (
    (85, 85, 88),  # asphalt
    (60, 62, 66),  # dark asphalt
    (70, 105, 140),  # dirt
    (160, 165, 168),  # concrete
    (120, 128, 135),  # gravel
    (70, 90, 150),  # clay
)
_GROUND_COLORS: tuple[Color, ...] = (
    (50, 140, 70),  # grass
    (40, 105, 55),  # dark grass
    (80, 160, 175),  # dry grass
    (140, 185, 205),  # sand
    (45, 60, 80),  # soil
    (220, 222, 218),  # snow
)
_SKIES: tuple[tuple[Color, Color], ...] = (
    ((190, 130, 70), (235, 210, 190)),  # clear
    ((170, 170, 165), (215, 215, 210)),  # overcast
    ((140, 90, 80), (130, 175, 235)),  # dusk
)
_HILLS: tuple[Color, ...] = ((40, 75, 40), (120, 110, 100), (70, 90, 95))
_LINE_COLORS: tuple[Color, ...] = ((235, 235, 235), (40, 200, 235))  # white, yellow
_CONE_ORANGE: Color = (20, 110, 240)


_T = TypeVar("_T")


def _pick(rng: np.random.Generator, choices: Sequence[_T]) -> _T:
    return choices[int(rng.integers(len(choices)))]


def _sample_surfaces(rng: np.random.Generator) -> tuple[Color, Color, Color]:
    """Path, ground and marking colours that differ enough for the classes to be told apart."""
    path = _jitter(rng, _pick(rng, _PATH_COLORS), 12)
    ground = _jitter(rng, _pick(rng, _GROUND_COLORS), 15)
    for _ in range(20):
        if _distance(path, ground) >= 70:
            break
        ground = _jitter(rng, _pick(rng, _GROUND_COLORS), 15)
    line = _jitter(rng, _pick(rng, _LINE_COLORS), 10)
    if _distance(line, path) < 90:
        line = max(_LINE_COLORS, key=lambda c: _distance(c, path))
    return path, ground, line


def _sample_obstacle_color(rng: np.random.Generator, shape: str, avoid: tuple[Color, ...]) -> Color:
    """A saturated colour away from the path and ground ones; cones are mostly traffic orange."""
    if shape == "cone" and rng.random() < 0.7:
        return _jitter(rng, _CONE_ORANGE, 10)
    color: Color = (0, 0, 255)
    for _ in range(10):
        r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0))
        color = (int(b * 255), int(g * 255), int(r * 255))
        if all(_distance(color, other) >= 60 for other in avoid):
            break
    return color


def _sample_curvature(rng: np.random.Generator, direction: int) -> float:
    if direction == BLOCKED:  # any bend: a blocked path must not be recognisable from its curvature
        direction = int(rng.integers(3))
    if direction == STRAIGHT:
        return float(rng.uniform(-_STRAIGHT_BAND, _STRAIGHT_BAND))
    magnitude = float(rng.uniform(*_BEND_BAND))
    return -magnitude if direction == LEFT else magnitude


def _new_obstacle(
    rng: np.random.Generator, depth: float, offset: float, half_width: float, avoid: tuple[Color, ...]
) -> Obstacle:
    shape = _pick(rng, OBSTACLE_SHAPES)
    aspect = {"box": (0.6, 1.2), "blob": (0.5, 0.85), "cone": (1.3, 2.0)}[shape]
    return Obstacle(
        depth=depth,
        offset=offset,
        half_width=half_width,
        aspect=float(rng.uniform(*aspect)),
        shape=shape,
        color=_sample_obstacle_color(rng, shape, avoid),
    )


def _min_half_width(path_half_width: float, depth: float) -> float:
    """Half-width, in path half-widths, under which an obstacle at `depth` would be too small to learn."""
    return _MIN_OBSTACLE_WIDTH / (2.0 * path_half_width * depth)


def _blocking_obstacle(rng: np.random.Generator, horizon: float) -> tuple[float, float, float]:
    depth = float(_depth_of(rng.uniform(*_NEAR_BASE_ROWS), horizon))
    # offset ≤ 0.35 and half-width ≥ 0.45 cover ≥ 45 % of the path: safely over BLOCKING_OVERLAP
    return depth, float(rng.uniform(-0.35, 0.35)), float(rng.uniform(0.45, 0.8))


def _far_obstacle_on_path(
    rng: np.random.Generator, horizon: float, path_half_width: float
) -> tuple[float, float, float]:
    depth = float(_depth_of(rng.uniform(_row_of(0.2, horizon), _FAR_BASE_ROW), horizon))
    low = max(0.75, _min_half_width(path_half_width, depth))
    return depth, float(rng.uniform(-0.4, 0.4)), float(rng.uniform(low, low + 0.35))


def _obstacle_beside_path(rng: np.random.Generator, geometry: SceneParams) -> tuple[float, float, float] | None:
    """An obstacle whose base stays clear of the path's edge; None when it would fall off the frame."""
    for _ in range(10):
        depth = float(rng.uniform(0.2, 0.95))
        low = max(0.3, _min_half_width(geometry.path_half_width, depth))
        half_width = float(rng.uniform(low, low + 0.4))
        offset = (1.25 + half_width + float(rng.uniform(0.0, 1.0))) * (1 if rng.random() < 0.5 else -1)
        x = _path_centre(geometry, depth) + offset * _path_half_width(geometry, depth)
        if 0.03 <= x <= 0.97:
            return depth, offset, half_width
    return None


def _sample_obstacles(
    rng: np.random.Generator, geometry: SceneParams, blocked: bool, avoid: tuple[Color, ...]
) -> tuple[Obstacle, ...]:
    """A blocking obstacle when asked, plus a few that must not block: beside the path, or far on it."""
    placements = [_blocking_obstacle(rng, geometry.horizon)] if blocked else []
    for _ in range(int(rng.integers(0, 3 if blocked else 4))):
        if rng.random() < 0.3:
            placements.append(_far_obstacle_on_path(rng, geometry.horizon, geometry.path_half_width))
        elif (beside := _obstacle_beside_path(rng, geometry)) is not None:
            placements.append(beside)
    return tuple(_new_obstacle(rng, *placement, avoid) for placement in placements)


def sample_scene_params(rng: np.random.Generator, direction: int | None = None) -> SceneParams:
    """Draw a random scene; `direction` forces its label (make_dataset uses it to balance the classes)."""
    if direction is None:
        direction = int(rng.integers(len(NAVIGATION_DIRECTIONS)))
    if direction not in range(len(NAVIGATION_DIRECTIONS)):
        raise ConfigError(
            f"direction {direction!r} is not a scene label: expected 0..{len(NAVIGATION_DIRECTIONS) - 1} "
            f"({', '.join(NAVIGATION_DIRECTIONS)})"
        )
    path, ground, line = _sample_surfaces(rng)
    sky_top, sky_horizon = _pick(rng, _SKIES)
    geometry = SceneParams(
        curvature=_sample_curvature(rng, direction),
        horizon=float(rng.uniform(0.33, 0.42)),
        vanish_x=0.5 + float(rng.uniform(-0.04, 0.04)),
        bottom_x=0.5 + float(rng.uniform(-0.08, 0.08)),
        path_half_width=float(rng.uniform(0.22, 0.34)),
        centre_line=str(rng.choice(["dashed", "solid", "none"], p=[0.45, 0.25, 0.3])),
        edge_lines=bool(rng.random() < 0.5),
        line_half_width=float(rng.uniform(0.011, 0.018)),
        dash_period=float(rng.uniform(0.6, 1.2)),
        travel=float(rng.uniform(0.0, 10.0)),
        obstacles=(),
        sky_top=_jitter(rng, sky_top, 10),
        sky_horizon=_jitter(rng, sky_horizon, 10),
        hills=_jitter(rng, _pick(rng, _HILLS), 10),
        ground=ground,
        path=path,
        line=line,
        hill_height=float(rng.uniform(0.0, 0.08)),
        haze=float(rng.uniform(0.0, 0.35)),
        texture_seed=int(rng.integers(2**31)),
        texture_strength=float(rng.uniform(0.06, 0.18)),
        brightness=float(rng.uniform(-0.12, 0.12)),
        contrast=float(rng.uniform(0.75, 1.2)),
        gamma=float(rng.uniform(0.75, 1.35)),
        white_balance=tuple(float(g) for g in rng.uniform(0.9, 1.1, 3)),  # type: ignore[arg-type]
        noise_sigma=float(rng.uniform(0.0, 0.035)),
        noise_seed=int(rng.integers(2**31)),
        blur_sigma=float(rng.uniform(0.0, 1.0)),
    )
    obstacles = _sample_obstacles(rng, geometry, direction == BLOCKED, avoid=(path, ground))
    return replace(geometry, obstacles=obstacles)
