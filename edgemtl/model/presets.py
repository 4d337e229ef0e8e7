"""Model presets as data, created by name: `create_model("nano", tasks)`.

Sizes are chosen for edge devices: nano trains in minutes on a laptop CPU and runs in a few
milliseconds; small and base trade speed for accuracy on real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.model.encoder import Encoder
from edgemtl.model.heads import PooledHead, SegmentationHead
from edgemtl.model.net import MultiTaskNet
from edgemtl.tasks import TaskSpec, validate_tasks


@dataclass(frozen=True)
class Preset:
    name: str
    stem_channels: int
    stages: tuple[tuple[int, int], ...]  # (channels, blocks) per stage; each stage halves resolution
    decoder_channels: tuple[int, ...]  # coarse to fine, one per encoder level but the coarsest
    head_channels: int  # width of the 1×1 expansion before global pooling
    input_size: tuple[int, int]  # default (height, width) for training and export

    @property
    def stride(self) -> int:
        """Total downsampling of the encoder (stem + stages): input sides must be multiples of it."""
        return 2 ** (1 + len(self.stages))


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("nano", 16, ((24, 1), (32, 2), (64, 2), (96, 1)), (64, 32, 24, 16), 128, (128, 128)),
        Preset("small", 24, ((32, 2), (48, 2), (96, 3), (160, 2)), (96, 48, 32, 24), 256, (192, 192)),
        Preset("base", 32, ((48, 2), (64, 3), (128, 4), (256, 2)), (128, 64, 48, 32), 512, (256, 256)),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}") from None


def create_model(preset: str, tasks: Sequence[TaskSpec], *, skips: bool = True) -> MultiTaskNet:
    """Build the multi-task net of a preset with one head per task."""
    config = get_preset(preset)
    tasks = validate_tasks(tasks)
    encoder = Encoder(config.stem_channels, config.stages)
    heads = {}
    for task in tasks:
        if kind_of(task).per_image:
            heads[task.name] = PooledHead(encoder.channels[-1], task.num_outputs, config.head_channels)
        else:
            heads[task.name] = SegmentationHead(encoder.channels, config.decoder_channels, task.num_outputs, skips)
    return MultiTaskNet(encoder, heads, tasks)


def check_input_size(size: tuple[int, int], stride: int) -> None:
    """Height and width must be multiples of the encoder stride for the decoder to line up."""
    height, width = size
    if height <= 0 or width <= 0 or height % stride or width % stride:
        fixed = tuple(max(stride, -(-side // stride) * stride) for side in size)
        raise ConfigError(
            f"input size {height}x{width} does not fit the model: height and width must be positive "
            f"multiples of {stride}; use {fixed[0]}x{fixed[1]}"
        )


@dataclass(frozen=True)
class ModelCost:
    parameters: int
    flops: int  # floating-point operations of one forward pass at batch 1 (2 per multiply-add)
    input_size: tuple[int, int]

    def __str__(self) -> str:
        height, width = self.input_size
        return f"{self.parameters / 1e6:.3f} M parameters, {self.flops / 1e9:.3f} GFLOPs at {height}x{width}"


def model_cost(model: MultiTaskNet, input_size: tuple[int, int]) -> ModelCost:
    """Parameters and FLOPs, counted by PyTorch's own FlopCounterMode on a dummy frame."""
    check_input_size(input_size, model.encoder.stride)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, *input_size))
    model.train(was_training)
    parameters = sum(p.numel() for p in model.parameters())
    return ModelCost(parameters, int(counter.get_total_flops()), tuple(input_size))
