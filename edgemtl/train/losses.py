"""One loss per task kind, and the conversion from raw outputs to predictions for metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from edgemtl.tasks import TaskKind, TaskSpec


def task_loss(task: TaskSpec, output: Tensor, target: Tensor) -> Tensor:
    """Mean loss of one task over a batch. Targets come as the dataset stores them."""
    if task.kind is TaskKind.CLASSIFICATION:
        return F.cross_entropy(output, target.long())  # output (B, C), target (B,)
    if task.kind is TaskKind.SEGMENTATION:
        return F.cross_entropy(output, target.long())  # output (B, C, H, W), target (B, H, W)
    if task.kind is TaskKind.MULTILABEL:
        return F.binary_cross_entropy_with_logits(output, target.float())  # (B, L) both
    return F.mse_loss(output, target.float().view_as(output))  # regression (B, K)


def task_prediction(task: TaskSpec, output: Tensor) -> Tensor:
    """What the metrics compare with the target: class ids, 0/1 flags or values."""
    if task.kind in (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION):
        return output.argmax(1)
    if task.kind is TaskKind.MULTILABEL:
        return (torch.sigmoid(output) > 0.5).to(torch.uint8)
    return output
