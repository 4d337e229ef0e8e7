"""Procedural navigation scenes: what a forward-facing robot camera sees when it follows a path.

Why synthetic: the navigation tasks need thousands of labelled frames to train, and the demo must run
with no download. Every scene is drawn from a handful of numbers (`SceneParams`), so its image, its mask
and its label come from one geometry and cannot disagree, and a seed gives the same scene on every machine.

Geometry lives in size-free coordinates: x and y are fractions of the image width and height (0 = left /
top, 1 = right / bottom). A row y below the horizon sees the ground at *depth* s = (y - horizon) /
(1 - horizon): 1 on the bottom row, 0 at the horizon. s is an inverse distance, so widths on the ground
shrink linearly with it, which is what makes the path narrow towards a vanishing point. Rendering samples
this geometry at pixel centres, hence any size, square or not, shows the same scene.

NumPy + OpenCV only: datasets can be generated and written on a machine without PyTorch.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TypeVar

import cv2
import numpy as np

from edgemtl.data.dataset import ArrayDataset, check_image_size
from edgemtl.data.folder import write_dataset
from edgemtl.errors import ConfigError
from edgemtl.tasks import (
    ALL_SYNTHETIC_TASKS,
    CURVATURE_TASK,
    NAVIGATION_DIRECTIONS,
    NAVIGATION_SEG_CLASSES,
    NAVIGATION_TASKS,
    OBJECTS_TASK,
    OBSTACLE_SHAPES,
    PROXIMITY_TASK,
    TaskKind,
    TaskSpec,
    validate_tasks,
)

__all__ = [
    "BLOCKED",
    "BLOCKING_OVERLAP",
    "BLOCKING_ROW",
    "CURVE_THRESHOLD",
    "LEFT",
    "RIGHT",
    "STRAIGHT",
    "Obstacle",
    "SceneParams",
    "drive_sequence",
    "image_targets",
    "labels_all",
    "make_dataset",
    "render_scene",
    "sample_scene_params",
    "scene_label",
    "visible_obstacles",
    "write_dataset",
]

Color = tuple[int, int, int]  # B, G, R: the network sees BGR frames, as a camera hands them over
_Point = tuple[float, float]  # (x, y), fractions of the width and height
_Shapes = tuple[list[list[_Point]], list[tuple[_Point, _Point]]]  # polygons; ellipses as (centre, semi-axes)

LEFT, STRAIGHT, RIGHT, BLOCKED = (NAVIGATION_DIRECTIONS.index(d) for d in ("left", "straight", "right", "blocked"))
_BACKGROUND, _PATH, _LANE, _OBSTACLE = (
    NAVIGATION_SEG_CLASSES.index(c) for c in ("background", "path", "lane", "obstacle")
)

# The labelling rule. Sampling keeps clear of these thresholds (see the bands below), so the label of a
# sampled scene is never a coin toss; drive_sequence crosses them smoothly.
CURVE_THRESHOLD = 0.3  # |curvature| from which the path counts as bending left / right
BLOCKING_ROW = 0.6  # an obstacle whose base is below this row (fraction of height) is near...
BLOCKING_OVERLAP = 0.35  # ...and blocks the path when it covers at least this fraction of the path's width

_BEND_BAND = (0.45, 1.0)  # |curvature| of sampled left / right scenes
_STRAIGHT_BAND = 0.12  # |curvature| of sampled straight scenes
_NEAR_BASE_ROWS = (0.68, 0.95)  # base row of a sampled blocking obstacle
_FAR_BASE_ROW = 0.54  # lowest base row of a sampled obstacle that stands on the path but far away
_MIN_OBSTACLE_WIDTH = 0.0625  # fraction of the width: 8 px at 128 px, so obstacles stay learnable

_CURVE_GAIN = 0.5  # sideways shift of the path's far end at |curvature| = 1, fraction of the width
_FAR_DEPTH = 0.02  # depth clamp: the path is drawn up to (almost) the horizon
_LINE_FAR_DEPTH = 0.15  # markings stop here: beyond, they would be thinner than a pixel and alias
_LINE_MIN_SCALE = 0.35  # markings keep this fraction of their near width in the distance (learnable)
_TEXTURE_SIZE = 64  # side of the tileable noise images textures are sampled from
_TEXTURE_VARIANTS = 8  # distinct noise images per smoothness
_NOISE_MARGIN = 64  # sensor noise: offsets into a fixed field per frame size (see _sensor_noise)
_SHIFT = 4  # fractional bits for OpenCV drawing: sub-pixel positions keep small sizes faithful
_DRIVE_SPEED = 0.06  # drive_sequence: distance per frame, in units of the bottom row's distance
_PASS_DISTANCE = 0.6  # drive_sequence: an obstacle this close is being passed and leaves the view
_VISIBILITY_SIZE = 128  # visibility is judged on a frame of this size, whatever size is rendered
_MIN_VISIBLE_SHARE = 0.25  # an obstacle counts as seen when this share of its outline is not hidden...
_MIN_VISIBLE_AREA = 0.001  # ...and what shows covers this fraction of the frame (16 px at 128 x 128)
_IMAGE_TARGETS = frozenset(t.name for t in (OBJECTS_TASK, CURVATURE_TASK, PROXIMITY_TASK))  # image_targets' keys


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


# ---------------------------------------------------------------------------------------------------------
# Geometry (shared by the label, the mask and the image)


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


# ---------------------------------------------------------------------------------------------------------
# Sampling


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


# ---------------------------------------------------------------------------------------------------------
# Rendering


@lru_cache(maxsize=4 * _TEXTURE_VARIANTS)
def _periodic_noise(variant: int, smoothness: float) -> np.ndarray:
    """Tileable noise (zero mean, unit spread), filtered in Fourier space so it wraps without seams.

    Cached: a few variants, shifted per scene, look as varied as fresh noise and cost nothing per scene.
    """
    rng = np.random.default_rng([variant, round(smoothness * 100)])
    frequencies = np.fft.fftfreq(_TEXTURE_SIZE)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    radius[0, 0] = np.inf  # no constant term
    spectrum = np.fft.fft2(rng.standard_normal((_TEXTURE_SIZE, _TEXTURE_SIZE))) / radius**smoothness
    field = np.real(np.fft.ifft2(spectrum))
    field = ((field - field.mean()) / field.std()).astype(np.float32)
    field.setflags(write=False)
    return field


@lru_cache(maxsize=4)
def _noise_bank(height: int, width: int) -> np.ndarray:
    """A fixed unit-Gaussian field a little larger than the frame, drawn once per frame size."""
    shape = (height + _NOISE_MARGIN, width + _NOISE_MARGIN, 3)
    bank = np.random.default_rng([height, width]).standard_normal(shape, dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _sensor_noise(seed: int, height: int, width: int) -> np.ndarray:
    """Unit Gaussian noise for one frame: a window into a fixed bank at a seed-chosen offset.

    Drawing fresh normal samples for every pixel costs more than all the rest of the rendering.
    """
    row, column = np.random.default_rng(seed).integers(_NOISE_MARGIN, size=2)
    return _noise_bank(height, width)[row : row + height, column : column + width]


@dataclass(frozen=True)
class _Ground:
    """Per-pixel geometry of the rows below the horizon: shared by the mask and the paint."""

    top: int  # index of the first row below the horizon
    depth: np.ndarray  # (h, 1) depth of each of those rows, clamped away from the horizon
    lateral: np.ndarray  # (h, W) x minus the path's centre on that row, fraction of the width


def _ground_geometry(params: SceneParams, height: int, width: int) -> _Ground:
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    top = int(np.searchsorted(ys, params.horizon, side="right"))
    depth = np.maximum(_depth_of(ys[top:], params.horizon), _FAR_DEPTH)[:, None].astype(np.float32)
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    lateral = (xs[None, :] - _path_centre(params, depth)).astype(np.float32)
    return _Ground(top, depth, lateral)


def _markings(params: SceneParams, ground: _Ground, half_width: np.ndarray) -> np.ndarray:
    """Lane markings: a dashed or solid centre line and/or two edge lines, as a (h, W) bool map."""
    line = params.line_half_width * np.maximum(ground.depth, _LINE_MIN_SCALE)
    distance = np.abs(ground.lateral)
    marks = np.zeros(distance.shape, dtype=bool)
    if params.centre_line != "none":
        centre = distance < line
        if params.centre_line == "dashed":
            along = 1.0 / ground.depth + params.travel  # distance along the path: dashes recede, and scroll
            centre &= np.mod(along / params.dash_period, 1.0) < 0.5
        marks |= centre
    if params.edge_lines:
        marks |= (distance > half_width - 3.0 * line) & (distance < half_width - line)
    return marks & (ground.depth >= _LINE_FAR_DEPTH)


def _ground_mask(params: SceneParams, ground: _Ground) -> np.ndarray:
    """(h, W) class ids of the ground rows: path, lane markings on it, background around it."""
    half_width = _path_half_width(params, ground.depth)
    on_path = np.abs(ground.lateral) < half_width
    mask = np.where(on_path, _PATH, _BACKGROUND).astype(np.uint8)
    mask[on_path & _markings(params, ground, half_width)] = _LANE
    return mask


def _float_color(color: Color) -> np.ndarray:
    """BGR 0..255 → float32 0..1, the range the scene is painted in."""
    return np.asarray(color, dtype=np.float32) / 255.0


def _ground_textures(params: SceneParams, ground: _Ground) -> tuple[np.ndarray, np.ndarray]:
    """Ground and path grain in ground coordinates, so it recedes with the path and bends with it."""
    seed = params.texture_seed
    shift = float((seed >> 6) % _TEXTURE_SIZE)  # scenes that share a noise variant still differ
    along = (1.0 / ground.depth + params.travel) * 30.0 + shift
    across = ground.lateral / ground.depth * 40.0 + shift
    map_x = np.mod(across, _TEXTURE_SIZE).astype(np.float32)
    map_y = np.broadcast_to(np.mod(along, _TEXTURE_SIZE), map_x.shape).astype(np.float32)
    fade = np.clip(ground.depth * 3.0, 0.0, 1.0) * params.texture_strength  # far grain would only alias
    variants = ((seed % _TEXTURE_VARIANTS, 1.1), ((seed >> 3) % _TEXTURE_VARIANTS, 0.8))
    ground_grain, path_grain = (
        1.0 + fade * cv2.remap(_periodic_noise(v, s), map_x, map_y, cv2.INTER_LINEAR, None, cv2.BORDER_WRAP)
        for v, s in variants
    )
    return ground_grain, path_grain


def _paint_sky(params: SceneParams, image: np.ndarray, top: int) -> None:
    """Sky gradient, then a silhouette of hills or trees sitting on the horizon (all background)."""
    height, width = image.shape[:2]
    ys = (np.arange(top, dtype=np.float32) + 0.5) / height
    blend = (ys / params.horizon)[:, None, None] ** 0.7
    image[:top] = _float_color(params.sky_top) * (1.0 - blend) + _float_color(params.sky_horizon) * blend
    knots = np.random.default_rng(params.texture_seed).random((1, 6)).astype(np.float32)
    profile = np.clip(cv2.resize(knots, (width, 1), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    hills = ys[:, None] >= params.horizon - params.hill_height * (0.3 + 0.7 * profile)
    image[:top][hills] = (
        _float_color(params.hills) * (1.0 - params.haze) + _float_color(params.sky_horizon) * params.haze
    )


def _paint_ground(params: SceneParams, ground: _Ground, mask: np.ndarray, image: np.ndarray) -> None:
    """Ground, path and markings with their grain, fading into the sky's colour with distance (haze)."""
    ground_mask = mask[ground.top :]
    table = np.empty((len(NAVIGATION_SEG_CLASSES), 3), dtype=np.float32)
    table[[_BACKGROUND, _PATH, _LANE]] = [
        _float_color(params.ground),
        _float_color(params.path),
        _float_color(params.line),
    ]
    ground_grain, path_grain = _ground_textures(params, ground)
    grain = np.where(ground_mask == _BACKGROUND, ground_grain, path_grain)
    haze = params.haze * (1.0 - ground.depth) ** 3
    colors = table.take(ground_mask, axis=0)
    image[ground.top :] = (
        colors * (grain * (1.0 - haze))[..., None] + _float_color(params.sky_horizon) * haze[..., None]
    )


def _to_pixels(points: list[_Point], height: int, width: int) -> np.ndarray:
    """Fractional (x, y) → OpenCV fixed-point pixel coordinates (pixel centres at integer positions)."""
    array = np.asarray(points, dtype=np.float64) * (width, height) - 0.5
    return np.round(array * (1 << _SHIFT)).astype(np.int32)


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


def _draw(target: np.ndarray, shapes: _Shapes, value: float | tuple[float, ...], height: int, width: int) -> None:
    polygons, ellipses = shapes
    for polygon in polygons:
        cv2.fillPoly(target, [_to_pixels(polygon, height, width)], value, cv2.LINE_8, _SHIFT)
    for centre, axes in ellipses:
        c = _to_pixels([centre], height, width)[0]
        a = np.round(np.multiply(axes, (width, height)) * (1 << _SHIFT)).astype(np.int32)
        cv2.ellipse(target, (int(c[0]), int(c[1])), (int(a[0]), int(a[1])), 0, 0, 360, value, -1, cv2.LINE_8, _SHIFT)


def _paint_obstacles(params: SceneParams, mask: np.ndarray, image: np.ndarray) -> None:
    """Far to near, so nearer obstacles hide farther ones; each casts a shadow at its base."""
    height, width = mask.shape
    ordered = sorted(params.obstacles, key=lambda o: o.depth)
    shade = np.ones(mask.shape, dtype=np.float32)
    for obstacle in ordered:
        x, base, half = _placement(params, obstacle)
        _draw(shade, ([], [((x + 0.3 * half, base), (1.3 * half, 0.15 * half))]), 0.6, height, width)
    image *= shade[..., None]
    for obstacle in ordered:
        shapes = _obstacle_shapes(params, obstacle)
        color = tuple(float(c) for c in _float_color(obstacle.color))
        _draw(image, shapes, color, height, width)
        _draw(mask, shapes, _OBSTACLE, height, width)
        _paint_details(shapes, obstacle, color, image, height, width)


def _paint_details(
    shapes: _Shapes,
    obstacle: Obstacle,
    color: tuple[float, ...],
    image: np.ndarray,
    height: int,
    width: int,
) -> None:
    """Shading that makes boxes, cones and rocks read as solid; inside the outline: the mask is unchanged."""
    polygons, ellipses = shapes
    lighter = tuple(min(c * 1.3 + 0.05, 1.0) for c in color)
    if obstacle.shape == "box":
        _draw(image, ([polygons[1]], []), lighter, height, width)
    elif obstacle.shape == "cone":
        (x0, base), (x1, _), (x2, top), (x3, _) = polygons[0]
        band = [(x0 + (x3 - x0) * f, base + (top - base) * f) for f in (0.45, 0.6)]
        band += [(x1 + (x2 - x1) * f, base + (top - base) * f) for f in (0.6, 0.45)]
        _draw(image, ([band], []), (0.95, 0.95, 0.95), height, width)
    else:
        (cx, cy), (ax, ay) = ellipses[1]
        _draw(image, ([], [((cx, cy), (ax * 0.5, ay * 0.5))]), lighter, height, width)


def _tone_curve(params: SceneParams) -> np.ndarray:
    """White balance, gamma, contrast and brightness as one lookup table, (1, 256, 3) uint8."""
    levels = np.arange(256, dtype=np.float32)[:, None] / 255.0
    values = np.clip(levels * np.asarray(params.white_balance, dtype=np.float32), 0.0, 1.0) ** params.gamma
    values = (values - 0.5) * params.contrast + 0.5 + params.brightness
    return np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)[None]


def _apply_camera(params: SceneParams, image: np.ndarray) -> np.ndarray:
    """Lens blur, sensor noise and lighting: the nuisances a real camera adds, then 8-bit BGR."""
    height, width = image.shape[:2]
    sigma = params.blur_sigma * height / 128.0
    if sigma >= 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += _sensor_noise(params.noise_seed, height, width) * np.float32(params.noise_sigma)
    frame = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(frame, _tone_curve(params))


def render_scene(params: SceneParams, size: tuple[int, int] = (128, 128)) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw a scene: (image (H, W, 3) uint8 BGR, mask (H, W) uint8 class ids, direction label).

    size is (height, width). Geometry is continuous, so every size shows the same scene.
    """
    height, width = check_image_size(size, minimum=8)
    ground = _ground_geometry(params, height, width)
    mask = np.full((height, width), _BACKGROUND, dtype=np.uint8)
    mask[ground.top :] = _ground_mask(params, ground)
    image = np.empty((height, width, 3), dtype=np.float32)
    _paint_sky(params, image, ground.top)
    _paint_ground(params, ground, mask, image)
    _paint_obstacles(params, mask, image)
    return _apply_camera(params, image), mask, scene_label(params)


def visible_obstacles(params: SceneParams) -> tuple[Obstacle, ...]:
    """The obstacles one can make out in the frame, near to far: nearer ones hide farther ones, edges clip.

    A target about what is *seen* must not name an obstacle hidden behind another (about 5 % of sampled
    obstacles are mostly hidden). Judged on an id map at a fixed size, so every render size agrees.
    """
    size = _VISIBILITY_SIZE
    ordered = sorted(params.obstacles, key=lambda o: o.depth)  # painting order: far to near
    ids = np.zeros((size, size), dtype=np.float32)
    single = np.empty_like(ids)
    areas = []
    for number, obstacle in enumerate(ordered, start=1):
        shapes = _obstacle_shapes(params, obstacle)
        single.fill(0.0)
        _draw(single, shapes, 1.0, size, size)
        areas.append(np.count_nonzero(single))
        _draw(ids, shapes, float(number), size, size)
    shown = np.bincount(ids.astype(np.int64).ravel(), minlength=len(ordered) + 1)[1:]
    seen = [
        obstacle
        for obstacle, area, count in zip(ordered, areas, shown, strict=True)
        if count >= _MIN_VISIBLE_SHARE * area and count >= _MIN_VISIBLE_AREA * size * size
    ]
    return tuple(reversed(seen))


def image_targets(params: SceneParams) -> dict[str, np.ndarray]:
    """The per-image targets beyond the navigation ones, by task name, from the scene's geometry.

    objects: which obstacle shapes are visible, (3,) 0/1. curvature: the path's bend, (1,) in -1..1.
    proximity: depth of the nearest visible obstacle standing on the path, (1,) in 0..1 (0: path clear).
    """
    seen = visible_obstacles(params)
    shapes = {obstacle.shape for obstacle in seen}
    nearest = max((o.depth for o in seen if _path_overlap(o) > 0), default=0.0)
    return {
        OBJECTS_TASK.name: np.array([shape in shapes for shape in OBSTACLE_SHAPES], dtype=np.float32),
        CURVATURE_TASK.name: np.array([params.curvature], dtype=np.float32),
        PROXIMITY_TASK.name: np.array([min(nearest, 1.0)], dtype=np.float32),
    }


# ---------------------------------------------------------------------------------------------------------
# Datasets and drives


def labels_all(tasks: Sequence[TaskSpec]) -> bool:
    """Whether the scenes have a target for every one of `tasks` (same name, kind and classes)."""
    provided = {(t.name, t.kind, t.classes) for t in ALL_SYNTHETIC_TASKS}
    return all((t.name, t.kind, t.classes) in provided for t in tasks)


def _check_synthetic_tasks(tasks: Sequence[TaskSpec]) -> tuple[TaskSpec, ...]:
    """Each task must be one the scenes can label: same name, kind and classes as in ALL_SYNTHETIC_TASKS."""
    tasks = validate_tasks(tasks)
    for task in tasks:
        if not labels_all([task]):
            offer = "; ".join(
                f"{t.name} ({t.kind.value}: {', '.join(t.classes) or 'one value'})" for t in ALL_SYNTHETIC_TASKS
            )
            raise ConfigError(
                f"synthetic scenes have no target for task {task.name!r} ({task.kind.value}: "
                f"{', '.join(task.classes) or 'one value'}): they provide {offer}"
            )
    return tasks


def make_dataset(
    n: int, size: tuple[int, int] = (128, 128), seed: int = 0, tasks: Sequence[TaskSpec] = NAVIGATION_TASKS
) -> ArrayDataset:
    """n scenes with targets for `tasks` (any of ALL_SYNTHETIC_TASKS); scene labels cycle left .. blocked.

    Scene i is drawn from its own generator seeded by (seed, i): the same arguments give the same arrays,
    and a larger n extends a smaller one rather than reshuffling it. The tasks only choose which targets are
    kept, never the scenes, so the images are the same whatever tasks are asked for.
    """
    if int(n) < 0 or int(seed) < 0:
        raise ConfigError(f"make_dataset(n={n!r}, seed={seed!r}): expected n ≥ 0 and seed ≥ 0")
    height, width = check_image_size(size, minimum=8)
    tasks = _check_synthetic_tasks(tasks)
    images = np.empty((n, height, width, 3), dtype=np.uint8)
    masks = np.empty((n, height, width), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    per_image = {t.name: np.empty((n, t.num_outputs), dtype=np.float32) for t in tasks if t.name in _IMAGE_TARGETS}
    for i in range(n):
        params = sample_scene_params(np.random.default_rng([seed, i]), direction=i % len(NAVIGATION_DIRECTIONS))
        images[i], masks[i], labels[i] = render_scene(params, (height, width))
        if per_image:
            values = image_targets(params)
            for name, target in per_image.items():
                target[i] = values[name]
    by_kind = {task.kind: task.name for task in NAVIGATION_TASKS}
    everything = {by_kind[TaskKind.CLASSIFICATION]: labels, by_kind[TaskKind.SEGMENTATION]: masks, **per_image}
    return ArrayDataset(images, {task.name: everything[task.name] for task in tasks})


def _curvature_track(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """Curvature per frame: holds a bend or a straight for a while, then eases into another one."""
    values = [_sample_curvature(rng, int(rng.integers(3)))]
    while len(values) < n_frames:
        values += [values[-1]] * int(rng.integers(25, 60))
        target = _sample_curvature(rng, int(rng.integers(3)))
        steps = int(rng.integers(15, 30))
        ease = (1 - np.cos(np.linspace(0, np.pi, steps + 1)[1:])) / 2
        values += list(values[-1] + (target - values[-1]) * ease)
    return np.asarray(values[:n_frames])


class _Traffic:
    """Obstacles that appear in the distance, approach as the robot drives on, and pass below the frame."""

    _SPAWN_DISTANCE = 5.5  # in units of the bottom row's distance: appears at depth ≈ 0.18

    def __init__(self, rng: np.random.Generator, scene: SceneParams) -> None:
        self._rng = rng
        self._scene = scene
        self._moving: list[tuple[float, Obstacle]] = []  # (distance, obstacle)
        self._next_spawn = int(rng.integers(5, 30))

    def step(self, frame_index: int) -> tuple[Obstacle, ...]:
        self._moving = [(d - _DRIVE_SPEED, o) for d, o in self._moving if self._visible(d - _DRIVE_SPEED, o)]
        if frame_index >= self._next_spawn:
            self._moving.append((self._SPAWN_DISTANCE, self._spawn()))
            self._next_spawn = frame_index + int(self._rng.integers(25, 70))
        return tuple(replace(o, depth=1.0 / d) for d, o in self._moving)

    def _visible(self, distance: float, obstacle: Obstacle) -> bool:
        """Still ahead and in view: not yet passed, and its top (lid included) above the bottom row."""
        if distance < _PASS_DISTANCE:
            return False
        _, base, half = _placement(self._scene, replace(obstacle, depth=1.0 / distance))
        return base - 2.0 * half * obstacle.aspect * 1.2 < 1.0

    def _spawn(self) -> Obstacle:
        depth = 1.0 / self._SPAWN_DISTANCE
        low = _min_half_width(self._scene.path_half_width, depth)
        if self._rng.random() < 0.4:
            offset, half_width = self._rng.uniform(-0.35, 0.35), self._rng.uniform(max(0.45, low), 0.9)
        else:
            half_width = self._rng.uniform(max(0.3, low), max(0.7, low + 0.2))
            offset = (1.3 + half_width + self._rng.uniform(0.0, 0.8)) * (1 if self._rng.random() < 0.5 else -1)
        return _new_obstacle(self._rng, depth, float(offset), float(half_width), (self._scene.path, self._scene.ground))


def drive_sequence(
    n_frames: int, size: tuple[int, int] = (128, 128), seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """A smooth drive, frame by frame, as (image, mask, label) like `render_scene`.

    The path eases between left bends, straights and right bends; obstacles appear far away and approach;
    colours, lighting and texture stay fixed (only sensor noise changes), so videos do not flicker.
    """
    height, width = check_image_size(size, minimum=8)
    rng = np.random.default_rng([seed, 1 << 20])  # apart from make_dataset's (seed, i) streams
    scene = sample_scene_params(rng, STRAIGHT)
    curvature = _curvature_track(rng, n_frames)
    traffic = _Traffic(rng, scene)
    for i in range(n_frames):
        params = replace(
            scene,
            curvature=float(curvature[i]),
            bottom_x=scene.bottom_x + 0.03 * float(np.sin(2 * np.pi * i / 90)),
            travel=scene.travel + i * _DRIVE_SPEED,
            obstacles=traffic.step(i),
            noise_seed=scene.noise_seed + i,
        )
        yield render_scene(params, (height, width))
