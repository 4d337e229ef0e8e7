"""Classification: one class per image, from a softmax over the classes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.kinds.base import (
    LABEL_INDICES,
    TaskResult,
    check_label_indices,
    class_id,
    class_swap,
    empty_cell,
    expected_names,
)
from edgemtl.kinds.imbalance import CLASS_WEIGHTS, LOSS
from edgemtl.kinds.layouts import ClassIdTargets
from edgemtl.kinds.scores import TaskMeter, accuracy, confusion_matrix

if TYPE_CHECKING:
    from torch import Tensor

    from edgemtl.tasks import TaskSpec

MISSING_CLASS = -1  # an int64 label of -1: the image has no label for the task


@dataclass(frozen=True)
class ClassificationResult(TaskResult):
    task: TaskSpec
    index: int
    probabilities: np.ndarray  # (C,) float32

    @property
    def label(self) -> str:
        return self.task.classes[self.index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.index])

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": {c: round(float(p), 4) for c, p in zip(self.task.classes, self.probabilities)},
        }

    def overlay_text(self) -> str:
        return f"{self.label} {self.confidence:.2f}"


class ClassificationMeter(TaskMeter):
    """predicted / target: (N,) class ids; targets equal to `missing` (unlabelled) are skipped.

    Reports the confusion matrix too (nested lists of counts under "confusion"), so plots and reports
    read it from the same dict as the scores, without a second pass over the data.
    """

    primary = "accuracy"
    missing: ClassVar[int] = MISSING_CLASS

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.confusion = np.zeros((task.num_outputs, task.num_outputs), dtype=np.int64)

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        predicted, target = np.asarray(predicted), np.asarray(target)
        known = target != self.missing
        self.confusion += confusion_matrix(predicted[known], target[known], self.task.num_outputs)

    def compute(self) -> dict[str, float | list[list[int]]]:
        return {"accuracy": accuracy(self.confusion), "confusion": self.confusion.tolist()}


class Classification(ClassIdTargets):
    value = "classification"
    outputs: ClassVar[dict[str, str]] = {"probs": "(N, C) float32 softmax", "label": "(N,) int64 class index"}
    scored_field = "label"
    exact_outputs = frozenset({"label"})
    per_image = True
    head = "pooled"
    min_classes = 2
    class_noun = "class"
    flip_option = "flip_pairs"
    missing = MISSING_CLASS
    target_dtype = np.int64
    meter = ClassificationMeter
    label_problem = "unknown class names"
    steady = "one"
    # label_indices: cells may be class indices; loss and class_weights: edgemtl.kinds.imbalance
    options: ClassVar[dict[str, str]] = {LABEL_INDICES: "label indices", LOSS: "a loss", CLASS_WEIGHTS: "class weights"}
    loss_names = ("ce", "focal")

    def check_option(self, task: TaskSpec, key: str) -> None:
        if key == LABEL_INDICES:
            check_label_indices(task)
        else:
            super().check_option(task, key)

    def parse_label(self, task: TaskSpec, value: Any) -> int | None:
        return MISSING_CLASS if empty_cell(value) else class_id(value, task)

    def expected_label(self, task: TaskSpec) -> str:
        return f"expected one of {expected_names(task)}, empty if unlabelled"

    def format_label(self, task: TaskSpec, target: np.ndarray) -> str:
        return "" if int(target) == MISSING_CLASS else task.classes[int(target)]

    def present_classes(self, task: TaskSpec, target: np.ndarray) -> list[int]:
        return [int(target)]

    def describe(self, task: TaskSpec, value: np.ndarray) -> str:
        index = int(value)
        return task.classes[index] if 0 <= index < len(task.classes) else "?"

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Swap the labels of the flip pairs (left ↔ right)."""
        if not task.extra.get("flip_pairs"):
            return target
        labels = target.copy()
        swapped = flips & (labels >= 0)  # -1: unlabelled
        labels[swapped] = class_swap(task, len(task.classes))[labels[swapped]]
        return labels

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        import torch

        probs = torch.softmax(logits, dim=1)  # (N, C)
        return probs, probs.argmax(1)  # label: (N,) int64

    def decide(self, task: TaskSpec, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(probabilities))

    def steadied(self, result: TaskResult, probabilities: np.ndarray, decision: np.ndarray) -> TaskResult:
        return ClassificationResult(result.task, int(decision), probabilities.astype(np.float32))

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        return ClassificationResult(task, int(outputs["label"]), outputs["probs"])
