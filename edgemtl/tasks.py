"""The task vocabulary: what each head of the network predicts, described once.

A `TaskSpec` travels with the checkpoint and into the ONNX metadata, so nothing downstream (export,
runtime, a C++ integrator reading the metadata) has to be told the class names again. Pure Python:
the runtime imports it on devices without PyTorch.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgemtl.errors import ConfigError

_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Missing targets (partial labels): a sample may lack a task's target. Losses and metrics skip these.
MISSING_CLASS = -1  # classification: an int64 label of -1
IGNORE_PIXEL = 255  # segmentation: a uint8 mask value for an unlabelled pixel (a whole mask of it: no mask)
# multilabel and regression: a float32 row of NaN
MAX_SEGMENTATION_CLASSES = IGNORE_PIXEL  # class ids travel as uint8 masks, and 255 means "unlabelled"
DEFAULT_THRESHOLD = 0.5  # multilabel: a label is on when its probability exceeds this
REGRESSION_LOSSES = ("mse", "huber")  # huber: robust to outlying targets; mse (the default) otherwise


class TaskKind(str, Enum):
    CLASSIFICATION = "classification"  # one label per image (softmax)
    MULTILABEL = "multilabel"  # several labels per image (sigmoid)
    SEGMENTATION = "segmentation"  # one class per pixel
    REGRESSION = "regression"  # one or more numbers per image

    @classmethod
    def parse(cls, value: str | TaskKind) -> TaskKind:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(kind.value for kind in cls)
            raise ConfigError(f"unknown task kind {value!r}: expected one of {allowed}") from None

    @property
    def is_per_image(self) -> bool:
        """Per-image kinds share the global-pool → linear head; segmentation has a decoder."""
        return self is not TaskKind.SEGMENTATION


#: What a task's `extra` may hold: multilabel "threshold", regression "loss", and for augmentation
#: (edgemtl.data.augment) "flip_pairs", "flip_negate" and "scale_invariant".
EXTRA_KEYS = ("threshold", "loss", "flip_pairs", "flip_negate", "scale_invariant")


@dataclass(frozen=True)
class TaskSpec:
    """One task of the multi-task network.

    `name` becomes part of ONNX output names (`<name>_probs`, `<name>_mask`, ...), hence it must be
    an identifier. `classes` names the classes (classification, segmentation), the labels
    (multilabel) or the predicted quantities (regression; empty means a single unnamed value).
    `extra` carries kind-specific options, validated here so a typo fails before training:
    `threshold` (multilabel: one number in (0, 1), or one per label) and `loss` (regression: mse or huber);
    `flip_pairs` / `flip_negate` say what a horizontal flip does to the targets (see `_check_flip`).
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
        minimum = {
            TaskKind.CLASSIFICATION: 2,
            TaskKind.SEGMENTATION: 2,
            TaskKind.MULTILABEL: 1,
            TaskKind.REGRESSION: 0,
        }[self.kind]
        if len(self.classes) < minimum:
            raise ConfigError(
                f"task {self.name!r} ({self.kind.value}) has {len(self.classes)} class names: "
                f"expected at least {minimum}"
            )
        if self.kind is TaskKind.SEGMENTATION and len(self.classes) > MAX_SEGMENTATION_CLASSES:
            raise ConfigError(
                f"task {self.name!r} has {len(self.classes)} classes: masks are uint8 and {IGNORE_PIXEL} marks "
                f"unlabelled pixels, so at most {MAX_SEGMENTATION_CLASSES}"
            )
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
        self._check_extra()
        self._check_flip()

    def _check_flip(self) -> None:
        """How a horizontal flip changes the targets (edgemtl.data.augment), checked once, here.

        extra["flip_pairs"] (classification, multilabel, segmentation): class pairs a flip swaps, e.g.
        [["left", "right"]]. extra["flip_negate"] (regression): true when a flip negates the values
        (a curvature, a lateral offset), or the list of value names it negates.
        """
        pairs = self.extra.get("flip_pairs", [])
        if not (
            (not pairs or self.kind is not TaskKind.REGRESSION)
            and isinstance(pairs, list | tuple)
            and all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in pairs)
            and all(isinstance(name, str) and name in self.classes for pair in pairs for name in pair)
            and len({name for pair in pairs for name in pair}) == 2 * len(pairs)
        ):
            raise ConfigError(
                f"task {self.name!r} ({self.kind.value}) has flip_pairs {pairs!r}: expected pairs of distinct "
                f"class names of a non-regression task, e.g. [['left', 'right']]"
            )
        negate = self.extra.get("flip_negate", False)
        if not (
            isinstance(negate, bool)
            or (isinstance(negate, list | tuple) and all(isinstance(n, str) and n in self.classes for n in negate))
        ) or (negate and self.kind is not TaskKind.REGRESSION):
            raise ConfigError(
                f"task {self.name!r} ({self.kind.value}) has flip_negate {negate!r}: expected true, false or a list "
                f"of value names ({', '.join(self.classes) or 'none'}) of a regression task"
            )

    def _check_extra(self) -> None:
        unknown = sorted(set(self.extra) - set(EXTRA_KEYS))
        if unknown:
            close = difflib.get_close_matches(unknown[0], EXTRA_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected some of {', '.join(EXTRA_KEYS)}"
            raise ConfigError(f"task {self.name!r} has unknown extra key {unknown[0]!r}: {hint}")
        invariant = self.extra.get("scale_invariant", False)
        if not isinstance(invariant, bool):
            raise ConfigError(f"task {self.name!r} has scale_invariant {invariant!r}: expected true or false")
        if "threshold" in self.extra:
            if self.kind is not TaskKind.MULTILABEL:
                raise ConfigError(
                    f"task {self.name!r} ({self.kind.value}) has a threshold: only multilabel tasks take one"
                )
            value = self.extra["threshold"]
            per_label = isinstance(value, (list, tuple))
            if per_label and len(value) != len(self.classes):
                raise ConfigError(
                    f"task {self.name!r} has {len(value)} thresholds for {len(self.classes)} labels: expected "
                    f"one number, or one per label ({', '.join(self.classes)})"
                )
            for number in value if per_label else [value]:
                if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 < number < 1:
                    raise ConfigError(
                        f"task {self.name!r} has threshold {number!r}: expected a number between 0 and 1, exclusive"
                    )
        if "loss" in self.extra:
            if self.kind is not TaskKind.REGRESSION:
                raise ConfigError(
                    f"task {self.name!r} ({self.kind.value}) has a loss option: only regression tasks take one"
                )
            if self.extra["loss"] not in REGRESSION_LOSSES:
                raise ConfigError(
                    f"task {self.name!r} has loss {self.extra['loss']!r}: "
                    f"expected one of {', '.join(REGRESSION_LOSSES)}"
                )

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
        return max(len(self.classes), 1) if self.kind is TaskKind.REGRESSION else len(self.classes)

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
