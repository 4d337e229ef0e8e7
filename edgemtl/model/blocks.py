"""The building blocks: plain conv-BN-ReLU and its depthwise-separable edge-device variant.

ReLU rather than a smooth activation: it fuses into Conv in every ONNX backend (ORT, TensorRT) and
quantizes to int8 without a lookup table.
"""

from __future__ import annotations

from torch import Tensor, nn


class ConvBnAct(nn.Sequential):
    """Conv2d → BatchNorm2d → ReLU (the activation can be left out for a projection)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True) if activation else nn.Identity(),
        )


class DepthwiseSeparable(nn.Module):
    """Depthwise 3×3 then pointwise 1×1: about 8× fewer FLOPs than a full 3×3 conv.

    A residual connection is added when the block keeps shape, which lets deeper presets train
    without tuning.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = stride == 1 and in_channels == out_channels
        self.depthwise = ConvBnAct(in_channels, in_channels, 3, stride=stride, groups=in_channels)
        # With a residual, the activation comes after the sum instead.
        self.pointwise = ConvBnAct(in_channels, out_channels, 1, activation=not self.residual)
        self.activation = nn.ReLU(inplace=True) if self.residual else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.pointwise(self.depthwise(x))
        return self.activation(x + y) if self.residual else y
