"""Per-task metrics on NumPy arrays, shared by training validation, export verification and eval.

One meter per task kind; each accumulates over batches and reports a flat dict of floats, with the
headline number first under the key `TaskMeter.primary` (accuracy, mIoU, mean F1, MAE). Classification
adds its confusion matrix (nested lists of counts under "confusion"), so plots and reports read it from
the same dict as the scores, without a second pass over the data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from edgemtl.tasks import IGNORE_PIXEL, MISSING_CLASS, TaskKind, TaskSpec


def confusion_matrix(predicted: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = target, columns = prediction."""
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    target = np.asarray(target, dtype=np.int64).ravel()
    flat = target * num_classes + predicted
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU of each class; NaN for a class absent from both prediction and target."""
    true_positive = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    ious = iou_per_class(confusion)
    return float(np.nanmean(ious)) if np.any(~np.isnan(ious)) else float("nan")


def f1_per_label(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """F1 of each column of 0/1 flags; NaN where a label is neither predicted nor present."""
    predicted = np.asarray(predicted).astype(bool)
    target = np.asarray(target).astype(bool)
    true_positive = (predicted & target).sum(0).astype(np.float64)
    denominator = predicted.sum(0) + target.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * true_positive / denominator, np.nan)


class TaskMeter:
    """Accumulates predictions and targets of one task over batches."""

    primary: ClassVar[str]

    def __init__(self, task: TaskSpec) -> None:
        self.task = task

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class ClassificationMeter(TaskMeter):
    """predicted / target: (N,) class ids; targets equal to `missing` (unlabelled) are skipped."""

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


class SegmentationMeter(ClassificationMeter):
    """predicted / target: (N, H, W) class ids per pixel; unlabelled pixels (255) are skipped."""

    primary = "miou"
    missing = IGNORE_PIXEL

    def compute(self) -> dict[str, float]:
        ious = iou_per_class(self.confusion)
        result = {"miou": mean_iou(self.confusion), "pixel_accuracy": accuracy(self.confusion)}
        result.update({f"iou_{name}": float(iou) for name, iou in zip(self.task.classes, ious)})
        return result


class MultilabelMeter(TaskMeter):
    """predicted / target: (N, L) 0/1 flags; NaN targets (unlabelled) count neither way."""

    primary = "mean_f1"

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.predicted: list[np.ndarray] = []
        self.target: list[np.ndarray] = []

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        target = np.asarray(target, dtype=np.float32)
        known = ~np.isnan(target)  # unknown entries become "neither predicted nor present": no effect on F1
        self.predicted.append(np.asarray(predicted).astype(bool) & known)
        self.target.append(np.where(known, target, 0) > 0.5)

    def compute(self) -> dict[str, float]:
        f1 = f1_per_label(np.concatenate(self.predicted), np.concatenate(self.target))
        result = {"mean_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else float("nan")}
        result.update({f"f1_{name}": float(value) for name, value in zip(self.task.classes, f1)})
        return result


class RegressionMeter(TaskMeter):
    """predicted / target: (N, K) values; NaN targets (unlabelled) are skipped."""

    primary = "mae"

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.absolute_error = 0.0
        self.count = 0

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        predicted = np.asarray(predicted, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64).reshape(predicted.shape)
        known = ~np.isnan(target)
        self.absolute_error += float(np.abs(predicted - target)[known].sum())
        self.count += int(known.sum())

    def compute(self) -> dict[str, float]:
        return {"mae": self.absolute_error / self.count if self.count else float("nan")}


_METERS: dict[TaskKind, type[TaskMeter]] = {
    TaskKind.CLASSIFICATION: ClassificationMeter,
    TaskKind.SEGMENTATION: SegmentationMeter,
    TaskKind.MULTILABEL: MultilabelMeter,
    TaskKind.REGRESSION: RegressionMeter,
}


def make_meter(task: TaskSpec) -> TaskMeter:
    return _METERS[task.kind](task)


def primary_metric(task: TaskSpec) -> str:
    """The headline metric of a task: the one the best checkpoint is chosen by."""
    return _METERS[task.kind].primary


def higher_is_better(task: TaskSpec) -> bool:
    return task.kind is not TaskKind.REGRESSION
