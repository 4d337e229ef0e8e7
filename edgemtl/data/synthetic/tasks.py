"""The tasks synthetic scenes can label: the navigation default plus one task of every other kind.

Further targets the scenes derive from the same geometry, so every task kind can be trained and exported
without a download. They live with the scenes, not in edgemtl.tasks, because only the scenes produce them;
the product's default task set (NAVIGATION_TASKS) stays there.
"""

from __future__ import annotations

from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec

OBSTACLE_SHAPES = ("box", "blob", "cone")

#: Which obstacle shapes are visible in the frame.
OBJECTS_TASK = TaskSpec("objects", TaskKind.MULTILABEL, OBSTACLE_SHAPES)
#: How the path bends: -1 sharp left .. 0 straight .. 1 sharp right.
CURVATURE_TASK = TaskSpec("curvature", TaskKind.REGRESSION, extra={"flip_negate": True})
#: Nearness of the nearest obstacle on the path, as inverse distance: 1 at the bottom row, 0 at the horizon or
#: when the path is clear. Linear in the image row of the obstacle's base, which is what a CNN sees.
PROXIMITY_TASK = TaskSpec("proximity", TaskKind.REGRESSION)
#: Where each visible obstacle is: a box and its shape (cones, crates and rocks), at every size from 8 px wide
#: far away to half the frame close by, some hidden in part behind nearer ones, some cut by the frame's edge.
OBSTACLES_TASK = TaskSpec("obstacles", TaskKind.DETECTION, OBSTACLE_SHAPES)
ALL_SYNTHETIC_TASKS: tuple[TaskSpec, ...] = (
    *NAVIGATION_TASKS,
    OBJECTS_TASK,
    CURVATURE_TASK,
    PROXIMITY_TASK,
    OBSTACLES_TASK,
)
