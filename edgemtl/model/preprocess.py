"""Frame preprocessing as a module, so training and the exported graph run the very same ops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgemtl.resize import PAD_VALUE, fit, resize_matrices

#: Per-channel mean and std on the 0..255 scale, in the frame's own channel order (BGR).
DEFAULT_MEAN = (127.5, 127.5, 127.5)
DEFAULT_STD = (64.0, 64.0, 64.0)


class Preprocess(nn.Module):
    """uint8 (B, H, W, 3) camera frames → normalized float (B, 3, H, W).

    The permute leaves the tensor channels-last in memory, which is the fast layout for convolutions
    on CPUs, so no copy is made here. When every channel shares one mean and one std (the default),
    they are stored as scalars: ONNX Runtime broadcasts a scalar in one vectorized pass, while a
    per-channel (1, 3, 1, 1) constant can fall to a slow path once its layout optimizer moves the
    op to NHWC (measured: ~8x slower Sub/Mul in int8 graphs).
    """

    def __init__(self, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD) -> None:
        super().__init__()
        uniform = len(set(mean)) == 1 and len(set(std)) == 1
        shape = () if uniform else (1, 3, 1, 1)
        channels = 1 if uniform else 3
        mean_tensor = torch.tensor(mean[:channels], dtype=torch.float32).reshape(shape)
        scale_tensor = 1.0 / torch.tensor(std[:channels], dtype=torch.float32).reshape(shape)
        self.register_buffer("mean", mean_tensor, persistent=False)
        self.register_buffer("scale", scale_tensor, persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 3, 1, 2).float()  # (B, 3, H, W), channels-last strides
        return (x - self.mean) * self.scale


class FrameResize(nn.Module):
    """uint8 (B, H, W, 3) frames of one camera size → float (B, h, w, 3) at the model's, inside the graph.

    The resize policy's crop, padding and OpenCV area weights (`edgemtl.resize`) become two constant
    matrices, `rows @ frame @ columns.T` per channel, so the graph resizes exactly as `Engine.prepare`
    does (within the 0.5 level OpenCV rounds its uint8 result to) and any ONNX consumer can run it
    (two MatMuls). The output stays on the 0..255 scale and channels-last: `Preprocess` follows.
    """

    def __init__(self, frame_size: tuple[int, int], input_size: tuple[int, int], policy: str) -> None:
        super().__init__()
        self.fit = fit(tuple(frame_size), tuple(input_size), policy)
        rows, columns = resize_matrices(self.fit)
        padded = (rows.sum(1) == 0)[:, None] | (columns.sum(1) == 0)[None, :]  # (h, w): outside the target
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.float32), persistent=False)
        self.register_buffer("columns_t", torch.tensor(columns.T, dtype=torch.float32), persistent=False)
        pad = torch.tensor(padded, dtype=torch.float32)[None, :, :, None] * PAD_VALUE  # (1, h, w, 1)
        self.register_buffer("pad", pad, persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.float().permute(0, 3, 1, 2)  # (B, 3, H, W)
        x = torch.matmul(torch.matmul(self.rows, x), self.columns_t)  # (B, 3, h, w)
        return x.permute(0, 2, 3, 1) + self.pad  # (B, h, w, 3) on the 0..255 scale
