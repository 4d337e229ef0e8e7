"""Task kinds, one definition each (edgemtl.kinds.base.KindDef), and the table of them.

`kind_of(task)` is what the rest of edgemtl asks instead of branching on `task.kind`. Pure NumPy: it
imports without PyTorch, which only the training and export methods of a definition import, when called.
"""

from edgemtl.kinds.base import KindDef, TaskResult
from edgemtl.kinds.classification import MISSING_CLASS
from edgemtl.kinds.multilabel import DEFAULT_THRESHOLD
from edgemtl.kinds.options import check_extra
from edgemtl.kinds.registry import KINDS, kind_of
from edgemtl.kinds.regression import REGRESSION_LOSSES
from edgemtl.kinds.segmentation import IGNORE_PIXEL, MAX_SEGMENTATION_CLASSES

__all__ = [
    "DEFAULT_THRESHOLD",
    "IGNORE_PIXEL",
    "KINDS",
    "MAX_SEGMENTATION_CLASSES",
    "MISSING_CLASS",
    "REGRESSION_LOSSES",
    "KindDef",
    "TaskResult",
    "check_extra",
    "kind_of",
]
