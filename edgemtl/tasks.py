"""The task vocabulary: what each head of the network predicts, described once.

A `TaskSpec` travels with the checkpoint and into the ONNX metadata, so nothing downstream (export,
runtime, a C++ integrator reading the metadata) has to be told the class names again. What a kind means
(its outputs, loss, metrics, missing-label marker, valid options) is its definition in edgemtl.kinds,
which a TaskSpec reads to check itself. NumPy only: the runtime imports it on devices without PyTorch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgemtl.errors import ConfigError

# Missing targets (partial labels): a sample may lack a task's target; losses and metrics skip these.
# Each kind defines its marker, re-exported here beside the vocabulary: classification an int64 label
# of -1, segmentation a uint8 mask value of 255 (a whole mask of it: no mask), multilabel and regression
# a float32 row of NaN. So are the kinds' limits and defaults.
from edgemtl.kinds import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD
from edgemtl.kinds import IGNORE_PIXEL as IGNORE_PIXEL
from edgemtl.kinds import MAX_SEGMENTATION_CLASSES as MAX_SEGMENTATION_CLASSES
from edgemtl.kinds import MISSING_CLASS as MISSING_CLASS
from edgemtl.kinds import REGRESSION_LOSSES as REGRESSION_LOSSES
from edgemtl.kinds import check_extra, kind_of

_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TaskKind(str, Enum):
    CLASSIFICATION = "classification"  # one label per image (softmax)
    MULTILABEL = "multilabel"  # several labels per image (sigmoid)
    SEGMENTATION = "segmentation"  # one class per pixel
    REGRESSION = "regression"  # one or more numbers per image
    DETECTION = "detection"  # boxes with classes, any number per image

    @classmethod
    def parse(cls, value: str | TaskKind) -> TaskKind:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(kind.value for kind in cls)
            raise ConfigError(f"unknown task kind {value!r}: expected one of {allowed}") from None


@dataclass(frozen=True)
class TaskSpec:
    """One task of the multi-task network.

    `name` becomes part of ONNX output names (`<name>_probs`, `<name>_mask`, ...), hence it must be
    an identifier. `classes` names the classes (classification, segmentation), the labels
    (multilabel) or the predicted quantities (regression; empty means a single unnamed value).
    `extra` carries kind-specific options, validated here so a typo fails before training
    (edgemtl.kinds.options): `threshold` (multilabel: one number in (0, 1), or one per label), `loss`
    (regression: mse or huber), and for augmentation `flip_pairs` / `flip_negate` (what a horizontal flip
    does to the targets) and `scale_invariant`.
    """

    name: str
    kind: TaskKind
    classes: tuple[str, ...] = ()
    weight: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TaskKind.parse(self.kind))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(
                f"task name {self.name!r} is not usable: expected letters, digits and underscores, "
                "not starting with a digit"
            )
        kind_of(self).check_classes(self)
        duplicates = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if duplicates:
            raise ConfigError(f"task {self.name!r} repeats class names {duplicates}: names must be unique")
        if any(not c.strip() for c in self.classes):
            raise ConfigError(f"task {self.name!r} has an empty class name")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"task {self.name!r} has loss weight {self.weight!r}: expected a number ≥ 0")
        object.__setattr__(self, "weight", weight)
        check_extra(self)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """Per-label decision thresholds of a multilabel task (rare labels often want a lower one)."""
        value = self.extra.get("threshold", DEFAULT_THRESHOLD)
        if isinstance(value, (list, tuple)):
            return tuple(float(v) for v in value)
        return (float(value),) * len(self.classes)

    @property
    def regression_loss(self) -> str:
        """mse or huber, for a regression task."""
        return str(self.extra.get("loss", REGRESSION_LOSSES[0]))

    @property
    def num_outputs(self) -> int:
        """Width of the head's output: classes, labels or regressed values."""
        return kind_of(self).num_outputs(self)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "classes": list(self.classes),
            "weight": self.weight,
        }
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> TaskSpec:
        if not isinstance(data, dict):
            raise ConfigError(f"task description {data!r} is not a mapping: expected {{name, kind, classes}}")
        known = {"name", "kind", "classes", "weight", "extra"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"task description has unknown keys {unknown}: expected some of {sorted(known)}")
        missing = sorted({"name", "kind"} - set(data))
        if missing:
            raise ConfigError(f"task description {data!r} lacks {missing}")
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise ConfigError(f"task {data['name']!r}: extra must be a mapping, got {extra!r}")
        classes = data.get("classes", ())
        if isinstance(classes, str) or not isinstance(classes, Sequence):
            raise ConfigError(f"task {data['name']!r}: classes must be a list of names, got {classes!r}")
        return cls(
            name=data["name"],
            kind=data["kind"],
            classes=tuple(classes),
            weight=data.get("weight", 1.0),
            extra=dict(extra),
        )


def validate_tasks(tasks: Iterable[TaskSpec]) -> tuple[TaskSpec, ...]:
    """Check a task list as a whole: at least one task, unique names."""
    tasks = tuple(tasks)
    if not tasks:
        raise ConfigError("no tasks given: expected at least one task")
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"task names {duplicates} appear more than once: task names must be unique")
    return tasks


def tasks_to_json(tasks: Iterable[TaskSpec]) -> str:
    return json.dumps([t.to_dict() for t in validate_tasks(tasks)])


def tasks_from_json(text: str) -> tuple[TaskSpec, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"task list is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(data, list):
        raise ConfigError("task list JSON is not a list: expected [{name, kind, classes, weight}, ...]")
    return validate_tasks(TaskSpec.from_dict(item) for item in data)


NAVIGATION_DIRECTIONS = ("left", "straight", "right", "blocked")
NAVIGATION_SEG_CLASSES = ("background", "path", "lane", "obstacle")

#: The navigation default: where to go (a scene label) and what is where (a per-pixel mask).
NAVIGATION_TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        "scene", TaskKind.CLASSIFICATION, NAVIGATION_DIRECTIONS, weight=1.0, extra={"flip_pairs": [["left", "right"]]}
    ),
    TaskSpec("segmentation", TaskKind.SEGMENTATION, NAVIGATION_SEG_CLASSES, weight=1.0),
)
