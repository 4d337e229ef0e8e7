"""The network at a camera's frame size: the resize to its input and back to the frame inside the graph.

A camera pipeline around a 128×128 model otherwise spends its frame budget on host work: a CPU resize
down, a nearest-neighbour blow-up of the small mask, a blend. Inside the exported graph the same work
runs on the accelerator beside the network, and the mask gets better too: per-pixel logits are
upsampled bilinearly *before* the argmax, so class borders are smooth at the frame's resolution instead
of blocks of the model's pixels.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from edgemtl.kinds import kind_of
from edgemtl.model.net import MultiTaskNet

#: How the frame is brought to the network's input: bilinear with antialiasing, a tent filter as wide
#: as the scale, so a 5× downscale averages every pixel (like training's area resize), not one in five.
FRAME_RESIZE = "bilinear-antialias"


class FrameSizedNet(nn.Module):
    """normalized float (N, 3, H, W) frames of any size → the network's logits, per-pixel ones at (H, W).

    `input_size` is the (height, width) the network was trained at; the frame is stretched to it.
    """

    def __init__(self, model: MultiTaskNet, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.tasks = model.tasks
        self.input_size = tuple(input_size)
        self._per_pixel = {task.name for task in model.tasks if not kind_of(task).per_image}

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        size = frames.shape[-2:]
        resized = F.interpolate(frames, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        raw = self.model(resized)
        return {
            name: F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            if name in self._per_pixel
            else logits
            for name, logits in raw.items()
        }
