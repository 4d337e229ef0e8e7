"""`drive_sequence`: a video-like drive, one scene evolving frame by frame (bends ease, obstacles approach).

Why not independent scenes: the pipeline and benchmarks need frames a camera would hand over in a row, where
colours and lighting hold still and only the path and the obstacles move, so videos do not flicker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from edgemtl.data.dataset import check_image_size
from edgemtl.data.synthetic.geometry import STRAIGHT, Obstacle, SceneParams, _placement
from edgemtl.data.synthetic.render import render_scene
from edgemtl.data.synthetic.sampling import _min_half_width, _new_obstacle, _sample_curvature, sample_scene_params

_DRIVE_SPEED = 0.06  # drive_sequence: distance per frame, in units of the bottom row's distance
_PASS_DISTANCE = 0.6  # drive_sequence: an obstacle this close is being passed and leaves the view


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
