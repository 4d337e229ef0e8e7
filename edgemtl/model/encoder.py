"""The shared encoder: a stem and stages of depthwise-separable blocks, halving resolution each."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from edgemtl.model.blocks import ConvBnAct, DepthwiseSeparable


class Encoder(nn.Module):
    """Returns one feature map per resolution, finest first: strides 2, 4, 8, ... of the input.

    Every head reads from this list: per-image heads take the coarsest map, the segmentation
    decoder walks back up through all of them (the skips).
    """

    def __init__(self, stem_channels: int, stages: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.stem = ConvBnAct(3, stem_channels, 3, stride=2)
        blocks = []
        in_channels = stem_channels
        for out_channels, depth in stages:
            layers = [DepthwiseSeparable(in_channels, out_channels, stride=2)]
            layers += [DepthwiseSeparable(out_channels, out_channels) for _ in range(depth - 1)]
            blocks.append(nn.Sequential(*layers))
            in_channels = out_channels
        self.stages = nn.ModuleList(blocks)
        self.channels: tuple[int, ...] = (stem_channels, *(c for c, _ in stages))

    @property
    def reductions(self) -> tuple[int, ...]:
        """Downsampling of each feature map: 2, 4, 8, ..."""
        return tuple(2 ** (level + 1) for level in range(len(self.channels)))

    @property
    def stride(self) -> int:
        """Total downsampling: input height and width must be multiples of it."""
        return self.reductions[-1]

    def forward(self, x: Tensor) -> list[Tensor]:
        features = [self.stem(x)]  # (B, C0, H/2, W/2)
        for stage in self.stages:
            features.append(stage(features[-1]))  # (B, Ci, H/2^(i+1), W/2^(i+1))
        return features
