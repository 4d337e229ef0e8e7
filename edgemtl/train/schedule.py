"""The optimizer's learning rates: parameter groups (heads, encoder), and the schedule, a linear warm-up
then cosine decay to zero, stepped once per batch."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from edgemtl.model import MultiTaskNet
from edgemtl.train.config import TrainConfig


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first steps, then cosine decay to zero at the last step (stepped per batch)."""
    warmup_steps = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def parameter_groups(model: MultiTaskNet, weighting: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """The heads (and task weighting) at the learning rate, the encoder at `encoder_lr_scale` times it
    (a pretrained encoder is usually tuned gently), a frozen encoder not at all. Heads first: the logged
    rate is the first group's."""
    encoder = {id(p) for p in model.encoder.parameters()}
    heads = [p for p in model.parameters() if id(p) not in encoder]
    groups: list[dict[str, Any]] = [{"params": [*heads, *weighting.parameters()]}]
    if not config.freeze_encoder:
        encoder_lr = config.learning_rate * config.encoder_lr_scale
        groups.append({"params": list(model.encoder.parameters()), "lr": encoder_lr})
    return groups
