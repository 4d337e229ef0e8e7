"""Targets beyond the navigation label and mask, derived from a scene's geometry, and which tasks have them.

A target about what the camera *sees* must be judged on what is drawn, not on the scene's list of obstacles:
`visible_obstacles` rasterises the outlines to tell hidden obstacles from seen ones. `labels_all` and the
task check let callers refuse a task the scenes cannot label before any scene is generated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemtl.data.synthetic.geometry import Obstacle, SceneParams, _obstacle_shapes, _path_overlap
from edgemtl.data.synthetic.render import _draw
from edgemtl.data.synthetic.tasks import (
    ALL_SYNTHETIC_TASKS,
    CURVATURE_TASK,
    OBJECTS_TASK,
    OBSTACLE_SHAPES,
    PROXIMITY_TASK,
)
from edgemtl.errors import ConfigError
from edgemtl.kinds.boxes import clip_boxes, pack_boxes
from edgemtl.tasks import TaskSpec, validate_tasks

_VISIBILITY_SIZE = 128  # visibility is judged on a frame of this size, whatever size is rendered
_MIN_VISIBLE_SHARE = 0.25  # an obstacle counts as seen when this share of its outline is not hidden...
_MIN_VISIBLE_AREA = 0.001  # ...and what shows covers this fraction of the frame (16 px at 128 x 128)
_IMAGE_TARGETS = frozenset(t.name for t in (OBJECTS_TASK, CURVATURE_TASK, PROXIMITY_TASK))  # image_targets' keys


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


def obstacle_boxes(params: SceneParams, size: tuple[int, int]) -> np.ndarray:
    """The detection target of a scene at `size` (height, width): one box per visible obstacle.

    Exact, from the geometry that draws it: the extent of its outline (the whole obstacle, also where a
    nearer one hides part of it, as KITTI and nuScenes label), clipped to the frame where the frame's edge
    cuts it. An obstacle `visible_obstacles` counts as hidden has no box: nothing of it can be found.
    """
    height, width = size
    rows = []
    for obstacle in visible_obstacles(params):
        polygons, ellipses = _obstacle_shapes(params, obstacle)
        points = [point for polygon in polygons for point in polygon]
        for (cx, cy), (ax, ay) in ellipses:
            points += [(cx - ax, cy - ay), (cx + ax, cy + ay)]
        xy = np.asarray(points, np.float64) * (width, height)
        rows.append([OBSTACLE_SHAPES.index(obstacle.shape), *xy.min(0), *xy.max(0)])
    if not rows:
        return pack_boxes([])
    clipped, keep = clip_boxes(np.asarray(rows, np.float32), (height, width))
    return pack_boxes((int(row[0]), row[1:]) for row in clipped[keep])


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
