"""Frame preprocessing as a module, so training and the exported graph run the very same ops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: Per-channel mean and std on the 0..255 scale, in the frame's own channel order (BGR).
DEFAULT_MEAN = (127.5, 127.5, 127.5)
DEFAULT_STD = (64.0, 64.0, 64.0)


class Preprocess(nn.Module):
    """uint8 (B, H, W, 3) camera frames → normalized float (B, 3, H, W).

    The permute leaves the tensor channels-last in memory, which is the fast layout for convolutions
    on CPUs, so no copy is made here.
    """

    def __init__(self, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", 1.0 / torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 3, 1, 2).float()  # (B, 3, H, W), channels-last strides
        return (x - self.mean) * self.scale
