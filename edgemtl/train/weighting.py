"""How per-task losses are combined into the one loss that is minimized, chosen by name."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.tasks import TaskSpec


class FixedWeighting(nn.Module):
    """Σ weight_i · loss_i with the weights given in the task specs (the default)."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__()
        self.register_buffer("task_weights", torch.tensor([t.weight for t in tasks], dtype=torch.float32))
        self.names = [t.name for t in tasks]

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        return sum(weight * losses[name] for name, weight in zip(self.names, self.task_weights))

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.task_weights.tolist()))


WEIGHTINGS: dict[str, type[nn.Module]] = {"fixed": FixedWeighting}


def create_weighting(name: str, tasks: Sequence[TaskSpec]) -> nn.Module:
    try:
        return WEIGHTINGS[name](tasks)
    except KeyError:
        raise ConfigError(f"unknown task weighting {name!r}: expected one of {', '.join(WEIGHTINGS)}") from None
