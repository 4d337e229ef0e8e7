"""Model presets as data, created by name: `create_model("nano", tasks)`.

Sizes are chosen for edge devices: nano trains in minutes on a laptop CPU and runs in a few
milliseconds; small and base trade speed for accuracy on real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.kinds.detection import head_stride, tower_stride
from edgemtl.model.detection import DetectionHead
from edgemtl.model.encoder import Encoder
from edgemtl.model.heads import PooledHead, SegmentationHead
from edgemtl.model.net import MultiTaskNet
from edgemtl.model.timm_encoder import TimmEncoder, timm_feature_info, timm_name
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
        # A camera's aspect (5:3 and 16:9 ≈ 1.67-1.75): nano keeps 128x128's pixel count at 96x160.
        Preset("nano", 16, ((24, 1), (32, 2), (64, 2), (96, 1)), (64, 32, 24, 16), 128, (96, 160)),
        Preset("small", 24, ((32, 2), (48, 2), (96, 3), (160, 2)), (96, 48, 32, 24), 256, (192, 320)),
        Preset("base", 32, ((48, 2), (64, 3), (128, 4), (256, 2)), (128, 64, 48, 32), 512, (256, 448)),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}") from None


def create_model(
    preset: str,
    tasks: Sequence[TaskSpec],
    *,
    skips: bool = True,
    encoder: str = "",
    pretrained: bool = False,
    weights: str | None = None,
) -> MultiTaskNet:
    """Build the multi-task net of a preset with one head per task.

    `encoder`: "" for the preset's own, or "timm:<name>" for a timm backbone (`pretrained` from timm's hub,
    or `weights` from a local state dict); the preset then gives the decoder and head widths, and the
    decoder follows the timm model's channels and reductions.
    """
    config = get_preset(preset)
    tasks = validate_tasks(tasks)
    name = timm_name(encoder)
    if name is None:
        backbone: nn.Module = Encoder(config.stem_channels, config.stages)
    else:
        backbone = TimmEncoder(name, pretrained=pretrained, weights=weights)
    levels = len(backbone.channels)
    decoder = (*config.decoder_channels, *[config.decoder_channels[-1]] * levels)[: levels - 1]
    heads = {task.name: _HEADS[kind_of(task).head](task, backbone, config, decoder, skips) for task in tasks}
    return MultiTaskNet(backbone, heads, tasks)


def _pooled(task: TaskSpec, backbone: nn.Module, config: Preset, decoder: tuple[int, ...], skips: bool) -> nn.Module:
    return PooledHead(backbone.channels[-1], task.num_outputs, config.head_channels)


def _decoder(task: TaskSpec, backbone: nn.Module, config: Preset, decoder: tuple[int, ...], skips: bool) -> nn.Module:
    return SegmentationHead(backbone.channels, decoder, task.num_outputs, skips, reductions=backbone.reductions)


def _detection(task: TaskSpec, backbone: nn.Module, config: Preset, decoder: tuple[int, ...], skips: bool) -> nn.Module:
    """Its width is the segmentation decoder's at the head's stride (nano: 24 at stride 4, 32 at stride 8), so
    the head costs what a decoder level does there (stride 4 adds 29 % to nano's FLOPs, stride 8 12 %)."""
    stride, tower = head_stride(task), tower_stride(task)
    level = list(backbone.reductions).index(tower) if tower in backbone.reductions else 0
    width = decoder[max(len(decoder) - 1 - level, 0)]
    return DetectionHead(backbone.channels, backbone.reductions, width, task.num_outputs, stride, tower)


#: The head a kind asks for (`KindDef.head`) → how the preset builds it for a task.
_HEADS = {"pooled": _pooled, "decoder": _decoder, "detection": _detection}


def model_stride(preset: str, encoder: str = "") -> int:
    """The total downsampling of a preset's encoder, or of the timm encoder that replaces it."""
    name = timm_name(encoder)
    return get_preset(preset).stride if name is None else timm_feature_info(name)[1][-1]


def check_input_size(size: tuple[int, int], stride: int) -> None:
    """Height and width must be multiples of the encoder stride for the decoder to line up."""
    height, width = size
    if height <= 0 or width <= 0 or height % stride or width % stride:
        fixed = tuple(max(stride, _round(side / stride) * stride) for side in size)
        raise ConfigError(
            f"input size {height}x{width} does not fit the model: height and width must be positive "
            f"multiples of {stride}; use {fixed[0]}x{fixed[1]}"
        )


def _round(value: float) -> int:
    return int(value + 0.5)  # halves up: 80 at stride 32 is 96, the nearest size with no crop


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
