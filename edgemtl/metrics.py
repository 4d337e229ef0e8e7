"""Per-task metrics on NumPy arrays, shared by training validation, export verification and eval.

Each kind defines its meter (edgemtl.kinds): it accumulates over batches and reports a flat dict of
floats, with the headline number first under the key `TaskMeter.primary` (accuracy, mIoU, mean F1, MAE).
Classification adds its confusion matrix (nested lists of counts under "confusion"), so plots and
reports read it from the same dict as the scores, without a second pass over the data. This module is
where the rest of edgemtl asks for a task's meter and headline metric, whatever its kind.
"""

from __future__ import annotations

from edgemtl.kinds import kind_of
from edgemtl.kinds.classification import ClassificationMeter
from edgemtl.kinds.multilabel import MultilabelMeter
from edgemtl.kinds.regression import RegressionMeter
from edgemtl.kinds.scores import TaskMeter, accuracy, confusion_matrix, f1_per_label, iou_per_class, mean_iou
from edgemtl.kinds.segmentation import SegmentationMeter
from edgemtl.tasks import TaskSpec

__all__ = [
    "ClassificationMeter",
    "MultilabelMeter",
    "RegressionMeter",
    "SegmentationMeter",
    "TaskMeter",
    "accuracy",
    "confusion_matrix",
    "f1_per_label",
    "higher_is_better",
    "iou_per_class",
    "make_meter",
    "mean_iou",
    "primary_metric",
]


def make_meter(task: TaskSpec) -> TaskMeter:
    return kind_of(task).meter(task)


def primary_metric(task: TaskSpec) -> str:
    """The headline metric of a task: the one the best checkpoint is chosen by."""
    return kind_of(task).primary_metric


def higher_is_better(task: TaskSpec) -> bool:
    return kind_of(task).higher_is_better
