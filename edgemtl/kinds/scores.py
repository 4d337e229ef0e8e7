"""The arithmetic the kinds' meters share, on NumPy arrays: confusion matrices, accuracy, IoU and F1.

A meter accumulates one task's predictions and targets over batches and reports a flat dict of floats,
with the headline number first under the key `TaskMeter.primary`. Each kind's module defines its meter;
`edgemtl.metrics` is where the rest of edgemtl asks for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from edgemtl.tasks import TaskSpec


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

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError
