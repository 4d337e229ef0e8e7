"""The training side of every task kind: its loss, and its prediction for metrics (edgemtl.kinds)."""

from __future__ import annotations

from torch import Tensor

from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskSpec


def labelled_count(task: TaskSpec, target: Tensor) -> int:
    """How many labelled items `task_loss` averages over: its mean's denominator.

    Images for classification, pixels for segmentation, label or value entries for multilabel and
    regression. A batch's `task_loss` times this count, summed over batches and divided by the summed
    count, is the mean loss over every labelled item of a dataset, whatever the unlabelled share.
    """
    return int(kind_of(task).labelled(task, target).sum())


def task_loss(task: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
    """Mean loss of one task over the labelled part of a batch. Targets come as the dataset stores them.

    Missing targets (partial labels, edgemtl.tasks: -1 class, 255 pixel, NaN row) take no part: the
    mean is over what is labelled (`labelled_count` items), and a batch with no label for the task gives
    a zero loss whose gradients are zeros, so a weighted sum over tasks stays a valid graph.
    """
    return kind_of(task).loss(task, output, target)


def task_prediction(task: TaskSpec, output: Tensor) -> Tensor:
    """What the metrics compare with the target (class ids, 0/1 flags or values), as the export computes it."""
    return kind_of(task).prediction(task, output)
