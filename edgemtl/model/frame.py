"""The network at a camera's frame size: the resize to its input and back to the frame inside the graph.

Boxes (detection) come back in the frame's pixels: the head's coordinates are scaled by the stretch's
factors before the boxes are selected (`KindDef.raw_at_frame`).

A camera pipeline around a 128×128 model otherwise spends its frame budget on host work: a CPU resize
down, a nearest-neighbour blow-up of the small mask, a blend. Inside the exported graph the same work
runs on the accelerator beside the network, and the mask gets better too: per-pixel logits are
upsampled bilinearly *before* the argmax, so class borders are smooth at the frame's resolution instead
of blocks of the model's pixels.

Order matters for speed at the frame's size, where every op costs a full frame's pixels: the frame is
normalized *after* the downscale (an average of pixels commutes with a per-channel scale and shift, so
the result is the same), and a whole-number downscale is an average pool, which ONNX Runtime's CPU kernels
run ~2× faster than an antialiased resize (docs/benchmarks.md, "Frame-sized files").
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from edgemtl.kinds import kind_of
from edgemtl.model.net import MultiTaskNet
from edgemtl.model.preprocess import Preprocess, channels_first

#: A whole-number downscale (480×640 → 96×160): each network pixel the mean of its block of frame pixels,
#: OpenCV's INTER_AREA (the host path's and training's resize) for such a scale, without its rounding to uint8.
AREA = "area"
#: Any other scale, and a dynamic frame size: bilinear with antialiasing, a tent filter as wide as the
#: scale, so a 5× downscale still averages every pixel, not one in five.
BILINEAR_ANTIALIAS = "bilinear-antialias"


def frame_resize_method(frame_size: tuple[int, int] | str, input_size: tuple[int, int]) -> str:
    """The downscale a frame-sized graph does: `AREA` when each side divides by the network's, else antialias."""
    if isinstance(frame_size, str):  # "dynamic": the scale is known only per frame
        return BILINEAR_ANTIALIAS
    whole = all(f >= i and f % i == 0 for f, i in zip(frame_size, input_size))
    return AREA if whole else BILINEAR_ANTIALIAS


class FrameSizedNet(nn.Module):
    """uint8 (N, H, W, 3) BGR frames of the export's frame size → the network's logits, per-pixel ones at (H, W).

    `input_size` is the (height, width) the network was trained at; the frame is stretched to it, by
    `method` (`frame_resize_method`), and then normalized by `preprocess` (the model's Preprocess).
    """

    def __init__(self, model: MultiTaskNet, input_size: tuple[int, int], preprocess: Preprocess, method: str) -> None:
        super().__init__()
        self.model, self.preprocess = model, preprocess  # submodules: their buffers follow .to(device)
        self.tasks = model.tasks
        self.input_size = tuple(input_size)
        self.method = method
        self._per_pixel = {task.name for task in model.tasks if kind_of(task).per_pixel}

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        x = channels_first(frames)
        size = x.shape[-2:]
        if self.method == AREA:
            block = (int(size[0]) // self.input_size[0], int(size[1]) // self.input_size[1])
            resized = F.avg_pool2d(x, kernel_size=block, stride=block)
        else:
            resized = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        raw = self.model(self.preprocess.normalize(resized))
        scale_x, scale_y = size[1] / self.input_size[1], size[0] / self.input_size[0]
        return {
            task.name: F.interpolate(raw[task.name], size=size, mode="bilinear", align_corners=False)
            if task.name in self._per_pixel
            else kind_of(task).raw_at_frame(task, raw[task.name], scale_x, scale_y)  # boxes into frame pixels
            for task in self.tasks
        }
