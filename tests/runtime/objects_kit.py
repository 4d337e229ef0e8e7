"""Predictions with objects for the runtime's tests, without a detection model: a detection task's results
built from boxes given here (edgemtl.kinds.detection.DetectionResult, as the Engine builds them)."""

from __future__ import annotations

import numpy as np

from edgemtl.kinds.detection import DetectionResult
from edgemtl.kinds.objects import Objects
from edgemtl.runtime.results import Prediction
from edgemtl.tasks import TaskSpec

CLASSES = ("cone", "person", "robot")
OBJECTS_TASK = TaskSpec("objects", "detection", CLASSES)


def objects(boxes: list[list[float]], scores: list[float] | None = None, classes: list[int] | None = None) -> Objects:
    n = len(boxes)
    return Objects(
        np.array(boxes, np.float32).reshape(n, 4),
        np.array(scores if scores is not None else [0.9] * n, np.float32),
        np.array(classes if classes is not None else [0] * n, np.int64),
        CLASSES,
    )


def boxes_prediction(task: TaskSpec, found: Objects) -> Prediction:
    return Prediction({task.name: DetectionResult(task, found)})
