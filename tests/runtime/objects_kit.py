"""Predictions with objects for the runtime's tests, without a detection model.

`standin_task` puts a stand-in kind in the kinds table for one test: its graph outputs are the detection
contract's (boxes, scores, classes, count), so everything that asks "does this task have boxes?" says yes,
and its result carries `objects` as a detection result does. (The real detection kind replaces it once it
exists; the runtime reads only `objects` and the output names.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from edgemtl.kinds import KINDS, KindDef, TaskResult
from edgemtl.kinds.objects import Objects
from edgemtl.kinds.scores import TaskMeter
from edgemtl.runtime.results import Prediction
from edgemtl.tasks import TaskKind, TaskSpec

CLASSES = ("cone", "person", "robot")


@dataclass(frozen=True)
class BoxesResult(TaskResult):
    task: TaskSpec
    objects: Objects

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects.to_dicts()}

    def overlay_text(self) -> str:
        return f"{len(self.objects)} objects"


class _StandIn(KindDef):
    value = "boxes_standin"
    outputs: ClassVar[dict[str, str]] = {
        "boxes": "(N, 100, 4) float32 x1 y1 x2 y2",
        "scores": "(N, 100) float32",
        "classes": "(N, 100) int64",
        "count": "(N,) int64",
    }
    scored_field = "boxes"
    exact_outputs = frozenset({"classes", "count"})
    categorical = False
    per_image = False
    min_classes = 1
    class_noun = "class"
    flip_option = "flip_pairs"
    missing = float("nan")
    target_dtype = np.float32
    meter = TaskMeter
    loss_names = ("none",)

    def check_target(self, task, target, images_shape):
        raise NotImplementedError

    def flip(self, task, target, flips):
        raise NotImplementedError

    def labelled(self, task, target):
        raise NotImplementedError

    def loss(self, task, output, target, class_weights=None):
        raise NotImplementedError

    def postprocess(self, task, logits, constants):
        raise NotImplementedError

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        fields = (outputs["boxes"], outputs["scores"], outputs["classes"], outputs["count"])
        return BoxesResult(task, Objects.from_outputs(*fields, task.classes))


def standin_task(monkeypatch: pytest.MonkeyPatch) -> TaskSpec:
    """A task named "objects" whose kind has the detection contract's outputs (classes cone, person, robot),
    in the kinds table until the test ends (tests/conftest.py's `objects_task`)."""
    member = str.__new__(TaskKind, _StandIn.value)
    member._name_, member._value_ = "BOXES_STANDIN", _StandIn.value
    monkeypatch.setitem(TaskKind._value2member_map_, _StandIn.value, member)
    monkeypatch.setitem(TaskKind._member_map_, "BOXES_STANDIN", member)
    monkeypatch.setattr(TaskKind, "_member_names_", [*TaskKind._member_names_, "BOXES_STANDIN"])
    monkeypatch.setitem(KINDS, _StandIn.value, _StandIn())
    return TaskSpec("objects", _StandIn.value, CLASSES)


def objects(boxes: list[list[float]], scores: list[float] | None = None, classes: list[int] | None = None) -> Objects:
    n = len(boxes)
    return Objects(
        np.array(boxes, np.float32).reshape(n, 4),
        np.array(scores if scores is not None else [0.9] * n, np.float32),
        np.array(classes if classes is not None else [0] * n, np.int64),
        CLASSES,
    )


def boxes_prediction(task: TaskSpec, found: Objects) -> Prediction:
    return Prediction({task.name: BoxesResult(task, found)})
