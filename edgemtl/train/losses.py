"""One loss per task kind, and the conversion from raw outputs to predictions for metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from edgemtl.tasks import IGNORE_PIXEL, MISSING_CLASS, TaskKind, TaskSpec


def _mean_over(values: Tensor, known: Tensor) -> Tensor:
    """Mean of values where known; a batch with nothing known gives 0 that still backpropagates (zeros)."""
    return torch.where(known, values, 0.0).sum() / known.sum().clamp(min=1)


def _labelled(task: TaskSpec, target: Tensor) -> Tensor:
    """Which target items carry a label: not -1 (class), not 255 (pixel), not NaN (multilabel/regression)."""
    if task.kind is TaskKind.CLASSIFICATION:
        return target != MISSING_CLASS
    if task.kind is TaskKind.SEGMENTATION:
        return target != IGNORE_PIXEL
    return ~torch.isnan(target.float())


def labelled_count(task: TaskSpec, target: Tensor) -> int:
    """How many labelled items `task_loss` averages over: its mean's denominator.

    Images for classification, pixels for segmentation, label or value entries for multilabel and
    regression. A batch's `task_loss` times this count, summed over batches and divided by the summed
    count, is the mean loss over every labelled item of a dataset, whatever the unlabelled share.
    """
    return int(_labelled(task, target).sum())


def task_loss(task: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
    """Mean loss of one task over the labelled part of a batch. Targets come as the dataset stores them.

    Missing targets (partial labels, edgemtl.tasks: -1 class, 255 pixel, NaN row) take no part: the
    mean is over what is labelled (`labelled_count` items), and a batch with no label for the task gives
    a zero loss whose gradients are zeros, so a weighted sum over tasks stays a valid graph.
    """
    known = _labelled(task, target)
    if task.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
        # output (B, C) or (B, C, H, W), target (B,) or (B, H, W)
        ignore = MISSING_CLASS if task.kind is TaskKind.CLASSIFICATION else IGNORE_PIXEL
        per_item = F.cross_entropy(output, target.long(), ignore_index=ignore, reduction="none")
        return _mean_over(per_item, known)
    target = target.float().view_as(output)  # (B, L) or (B, K)
    known = known.view_as(output)
    target = torch.nan_to_num(target)
    if task.kind is TaskKind.MULTILABEL:
        return _mean_over(F.binary_cross_entropy_with_logits(output, target, reduction="none"), known)
    if task.regression_loss == "huber":
        return _mean_over(F.huber_loss(output, target, reduction="none"), known)
    return _mean_over(F.mse_loss(output, target, reduction="none"), known)


def task_prediction(task: TaskSpec, output: Tensor) -> Tensor:
    """What the metrics compare with the target: class ids, 0/1 flags or values."""
    if task.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
        return output.argmax(1)
    if task.kind is TaskKind.MULTILABEL:
        thresholds = torch.tensor(task.thresholds, device=output.device)  # (L,): the same flags as the export
        return (torch.sigmoid(output) > thresholds).to(torch.uint8)
    return output
