"""Per-task results of one frame, in the shape an application wants them (names, not indices)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edgemtl.tasks import TaskKind, TaskSpec


@dataclass(frozen=True)
class ClassificationResult:
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


@dataclass(frozen=True)
class MultilabelResult:
    task: TaskSpec
    flags: np.ndarray  # (L,) uint8: 1 where the probability exceeds the label's threshold (in the graph)
    probabilities: np.ndarray  # (L,) float32

    @property
    def labels(self) -> list[str]:
        """Names of the labels that are on, in the task's order."""
        return [c for c, flag in zip(self.task.classes, self.flags) if flag]

    @property
    def active(self) -> dict[str, float]:
        """The labels that are on, with their probabilities: what an application acts on."""
        return {c: float(p) for c, p, flag in zip(self.task.classes, self.probabilities, self.flags) if flag}

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "probabilities": {c: round(float(p), 4) for c, p in zip(self.task.classes, self.probabilities)},
        }


@dataclass(frozen=True)
class SegmentationResult:
    task: TaskSpec
    mask: np.ndarray  # (H, W) uint8 class ids at the frame's size

    def class_fractions(self) -> dict[str, float]:
        """Share of the frame each class covers: a cheap summary for logs and JSON."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.task.classes))
        return {c: round(float(n) / self.mask.size, 4) for c, n in zip(self.task.classes, counts)}

    def to_dict(self) -> dict[str, Any]:
        return {"class_fractions": self.class_fractions()}


@dataclass(frozen=True)
class RegressionResult:
    task: TaskSpec
    values: np.ndarray  # (K,) float32

    @property
    def by_name(self) -> dict[str, float]:
        """Each value under the name the task gives it; a task with one unnamed value calls it "value"."""
        names = self.task.classes or ("value",)
        return {n: float(v) for n, v in zip(names, self.values)}

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.by_name}


TaskResult = ClassificationResult | MultilabelResult | SegmentationResult | RegressionResult


def task_result(task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
    """Build one task's result from its graph outputs (by field name) for a single frame."""
    if task.kind is TaskKind.CLASSIFICATION:
        return ClassificationResult(task, int(outputs["label"]), outputs["probs"])
    if task.kind is TaskKind.MULTILABEL:
        return MultilabelResult(task, outputs["flags"], outputs["probs"])
    if task.kind is TaskKind.SEGMENTATION:
        mask = outputs["mask"]
        if mask.shape != frame_size:
            mask = cv2.resize(mask, (frame_size[1], frame_size[0]), interpolation=cv2.INTER_NEAREST)
        return SegmentationResult(task, mask)
    return RegressionResult(task, outputs["values"])


class Prediction(Mapping[str, TaskResult]):
    """All task results of one frame, keyed by task name."""

    def __init__(self, results: dict[str, TaskResult]) -> None:
        self._results = results

    def __getitem__(self, task: str) -> TaskResult:
        return self._results[task]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def to_dict(self) -> dict[str, Any]:
        return {name: result.to_dict() for name, result in self._results.items()}
