"""Task heads. Each takes the encoder's feature list and returns raw outputs (logits or values)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.model.blocks import ConvBnAct, DepthwiseSeparable


class PooledHead(nn.Module):
    """Global pool → linear, for every per-image kind (classification, multilabel, regression).

    A 1×1 conv widens the coarsest features before pooling, as mobile classifiers do: pooling a
    narrow map throws away what the linear layer needs.
    """

    def __init__(self, in_channels: int, num_outputs: int, hidden_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        if num_outputs < 1:
            raise ConfigError(f"a pooled head needs at least one output, got {num_outputs}")
        self.expand = ConvBnAct(in_channels, hidden_channels, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_channels, num_outputs)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.pool(self.expand(features[-1])).flatten(1)  # (B, hidden)
        return self.linear(self.dropout(x))  # (B, num_outputs)


class SegmentationHead(nn.Module):
    """A decoder of transposed convolutions back to input resolution, with optional encoder skips.

    Each step scales resolution up to the next finer encoder map with a k×k stride-k transposed conv
    (k = 2 for every built-in and most timm encoders; no overlapping kernels, so no checkerboard
    artefacts), adds the projected encoder map of that resolution, and refines with a depthwise-separable
    block. A last transposed conv emits per-pixel class logits at full size. `reductions`: each encoder
    map's downsampling, finest first (default 2, 4, 8, ...).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        decoder_channels: Sequence[int],
        num_classes: int,
        skips: bool = True,
        reductions: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        reductions = tuple(reductions or (2 ** (i + 1) for i in range(len(encoder_channels))))
        factors = [coarse // fine for coarse, fine in zip(reversed(reductions[1:]), reversed(reductions[:-1]))]
        if any(coarse % fine for coarse, fine in zip(reductions[1:], reductions[:-1])):
            raise ConfigError(f"encoder reductions {list(reductions)}: each must be a multiple of the one before")
        if len(decoder_channels) != len(encoder_channels) - 1:
            raise ConfigError(
                f"segmentation decoder has {len(decoder_channels)} stages for {len(encoder_channels)} "
                f"encoder levels: expected {len(encoder_channels) - 1}"
            )
        self.skips = skips
        self.up = nn.ModuleList()
        self.project = nn.ModuleList()
        self.refine = nn.ModuleList()
        in_channels = encoder_channels[-1]
        # Walk from the coarsest level to the finest, matching encoder levels -2, -3, ..., 0.
        for out_channels, skip_channels, factor in zip(decoder_channels, reversed(encoder_channels[:-1]), factors):
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(in_channels, out_channels, factor, stride=factor, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                )
            )
            self.project.append(ConvBnAct(skip_channels, out_channels, 1, activation=False) if skips else nn.Identity())
            self.refine.append(DepthwiseSeparable(out_channels, out_channels))
            in_channels = out_channels
        self.classifier = nn.ConvTranspose2d(in_channels, num_classes, reductions[0], stride=reductions[0])

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[-1]
        for level, (up, project, refine) in enumerate(zip(self.up, self.project, self.refine)):
            x = up(x)  # (B, C, 2h, 2w)
            if self.skips:
                x = x + project(features[-2 - level])
            x = refine(x)
        return self.classifier(x)  # (B, num_classes, H, W)
