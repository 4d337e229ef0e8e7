"""The learning-rate schedule: linear warm-up, then cosine decay to zero, stepped once per batch."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first steps, then cosine decay to zero at the last step (stepped per batch)."""
    warmup_steps = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
