"""The vector trunk: an MLP over standardized features, feeding one linear head per task (PyTorch).

The net is the same `MultiTaskNet` as for images (a trunk returning a feature list, heads keyed by task);
only the trunk and the heads' first layer differ, so task kinds, losses, weighting, metrics and export are
the image path's own. Presets are data, by name like the image presets: widths, dropout, normalization.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.features import refuse_pixel_tasks
from edgemtl.kinds import kind_of
from edgemtl.model.net import MultiTaskNet
from edgemtl.tasks import TaskSpec, validate_tasks

NORMALIZATIONS = ("layer", "batch", "none")


@dataclass(frozen=True)
class VectorPreset:
    name: str
    widths: tuple[int, ...]  # hidden layer widths of the shared trunk
    dropout: float  # after each hidden layer, in training only
    normalization: str  # "layer" (batch-size independent: the default), "batch" or "none"


VECTOR_PRESETS: dict[str, VectorPreset] = {
    preset.name: preset
    for preset in (
        VectorPreset("nano", (64, 64), 0.05, "layer"),
        VectorPreset("small", (128, 128), 0.1, "layer"),
        VectorPreset("base", (256, 256, 128), 0.1, "layer"),
    )
}


def get_vector_preset(name: str) -> VectorPreset:
    try:
        return VECTOR_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown vector preset {name!r}: expected one of {', '.join(VECTOR_PRESETS)}") from None


class Standardize(nn.Module):
    """Raw float32 (N, F) features → (x - mean) / std per feature: the training split's statistics, in
    the graph, so a caller passes raw units exactly as training saw them before this step."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("scale", 1.0 / torch.tensor(std, dtype=torch.float32), persistent=False)

    def forward(self, features: Tensor) -> Tensor:
        return (features.float() - self.mean) * self.scale


def _normalization(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.Identity()


class MLPTrunk(nn.Module):
    """Linear → normalization → ReLU → dropout per width; returns a one-item feature list, as the image
    encoder returns one map per resolution, so `MultiTaskNet` and its heads read it the same way."""

    def __init__(self, in_features: int, widths: Sequence[int], dropout: float, normalization: str) -> None:
        super().__init__()
        if in_features < 1:
            raise ConfigError(f"a vector model needs at least one feature, got {in_features}")
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalization {normalization!r}: expected one of {', '.join(NORMALIZATIONS)}")
        layers: list[nn.Module] = []
        width = in_features
        for out in widths:
            layers += [nn.Linear(width, out), _normalization(normalization, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        self.layers = nn.Sequential(*layers)
        self.channels: tuple[int, ...] = (width,)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.layers(x)]  # (B, width)


class VectorHead(nn.Module):
    """One task's head on the trunk's output: a linear layer to the kind's outputs (logits or values).

    Values come out in the target's own units (a blood pressure of 120, not 0.3): `offset` and `scale`
    (saved with the weights) map the layer's unit-scale output onto the training targets' mean and spread.
    Without them the optimizer, which moves a weight by about the learning rate per step, would need
    tens of thousands of steps just to reach a mean of 120. Logits keep offset 0 and scale 1.
    """

    def __init__(self, in_features: int, num_outputs: int) -> None:
        super().__init__()
        if num_outputs < 1:
            raise ConfigError(f"a head needs at least one output, got {num_outputs}")
        self.linear = nn.Linear(in_features, num_outputs)
        self.register_buffer("offset", torch.zeros(num_outputs))
        self.register_buffer("scale", torch.ones(num_outputs))

    def fit_targets(self, targets: np.ndarray) -> None:
        """Offset and scale from a value task's training targets (N, K); NaN rows (unlabelled) left out."""
        values = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        if np.isfinite(values).any():
            self.offset.copy_(torch.from_numpy(np.nan_to_num(np.nanmean(values, axis=0))))
            self.scale.copy_(torch.from_numpy(np.maximum(np.nan_to_num(np.nanstd(values, axis=0), nan=1.0), 1e-6)))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.linear(features[-1]) * self.scale + self.offset  # (B, num_outputs)


def fit_value_heads(model: MultiTaskNet, targets: Mapping[str, np.ndarray]) -> None:
    """Scale the heads of value tasks (whose outputs are the values themselves) to their training targets."""
    for task in model.tasks:
        head = model.heads[task.name]
        if isinstance(head, VectorHead) and not kind_of(task).categorical:
            head.fit_targets(targets[task.name])


def create_vector_model(preset: str, tasks: Sequence[TaskSpec], feature_count: int) -> MultiTaskNet:
    """The multi-task MLP of a preset for `feature_count` inputs, one head per task (per-row kinds only)."""
    config = get_vector_preset(preset)
    tasks = validate_tasks(tasks)
    refuse_pixel_tasks(tasks)
    trunk = MLPTrunk(feature_count, config.widths, config.dropout, config.normalization)
    heads = {task.name: VectorHead(trunk.channels[-1], task.num_outputs) for task in tasks}
    return MultiTaskNet(trunk, heads, tasks)
