"""Drawing a scene: `render_scene` turns a `SceneParams` into an 8-bit BGR image and its class mask.

The mask is painted from the same per-pixel geometry as the image, so every pixel's class is exactly what
was drawn there. Textures and sensor noise come from small cached fields rather than fresh random samples
per pixel: rendering stays cheap enough to generate thousands of frames on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgemtl.data.dataset import check_image_size
from edgemtl.data.synthetic.geometry import (
    Color,
    Obstacle,
    SceneParams,
    _depth_of,
    _obstacle_shapes,
    _path_centre,
    _path_half_width,
    _placement,
    _Point,
    _Shapes,
    scene_label,
)
from edgemtl.tasks import NAVIGATION_SEG_CLASSES

_BACKGROUND, _PATH, _LANE, _OBSTACLE = (
    NAVIGATION_SEG_CLASSES.index(c) for c in ("background", "path", "lane", "obstacle")
)

_FAR_DEPTH = 0.02  # depth clamp: the path is drawn up to (almost) the horizon
_LINE_FAR_DEPTH = 0.15  # markings stop here: beyond, they would be thinner than a pixel and alias
_LINE_MIN_SCALE = 0.35  # markings keep this fraction of their near width in the distance (learnable)
_TEXTURE_SIZE = 64  # side of the tileable noise images textures are sampled from
_TEXTURE_VARIANTS = 8  # distinct noise images per smoothness
_NOISE_MARGIN = 64  # sensor noise: offsets into a fixed field per frame size (see _sensor_noise)
_SHIFT = 4  # fractional bits for OpenCV drawing: sub-pixel positions keep small sizes faithful


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
