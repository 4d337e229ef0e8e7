"""Procedural navigation scenes: what a forward-facing robot camera sees when it follows a path.

Why synthetic: the navigation tasks need thousands of labelled frames to train, and the demo must run
with no download. Every scene is drawn from a handful of numbers (`SceneParams`), so its image, its mask
and its label come from one geometry and cannot disagree, and a seed gives the same scene on every machine.

The parts: geometry (what a scene is, its size-free coordinates and its label), sampling (random scenes),
render (image and mask), targets (the other tasks' targets, and which tasks the scenes label), tasks (the
task specs only these scenes label), dataset (`make_dataset`) and drives (`drive_sequence`, a video-like
sequence). Import from the package, not the parts.

NumPy + OpenCV only: datasets can be generated and written on a machine without PyTorch.
"""

from edgemtl.data.folder import write_dataset
from edgemtl.data.synthetic.dataset import make_dataset
from edgemtl.data.synthetic.drives import drive_sequence
from edgemtl.data.synthetic.geometry import (
    BLOCKED,
    BLOCKING_OVERLAP,
    BLOCKING_ROW,
    CURVE_THRESHOLD,
    LEFT,
    RIGHT,
    STRAIGHT,
    Obstacle,
    SceneParams,
    scene_label,
)
from edgemtl.data.synthetic.render import render_scene
from edgemtl.data.synthetic.sampling import sample_scene_params
from edgemtl.data.synthetic.targets import image_targets, labels_all, obstacle_boxes, visible_obstacles
from edgemtl.data.synthetic.tasks import (
    ALL_SYNTHETIC_TASKS,
    CURVATURE_TASK,
    OBJECTS_TASK,
    OBSTACLE_SHAPES,
    OBSTACLES_TASK,
    PROXIMITY_TASK,
)

__all__ = [
    "ALL_SYNTHETIC_TASKS",
    "BLOCKED",
    "BLOCKING_OVERLAP",
    "BLOCKING_ROW",
    "CURVATURE_TASK",
    "CURVE_THRESHOLD",
    "LEFT",
    "OBJECTS_TASK",
    "OBSTACLES_TASK",
    "OBSTACLE_SHAPES",
    "PROXIMITY_TASK",
    "RIGHT",
    "STRAIGHT",
    "Obstacle",
    "SceneParams",
    "drive_sequence",
    "image_targets",
    "labels_all",
    "make_dataset",
    "obstacle_boxes",
    "render_scene",
    "sample_scene_params",
    "scene_label",
    "visible_obstacles",
    "write_dataset",
]
