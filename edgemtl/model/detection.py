"""The detection head: anchor-free, one prediction per location of a fine feature map (FCOS / YOLOv8-like).

A light top-down path (as a feature pyramid's) carries the coarsest encoder map back to the head's stride,
adding each finer encoder map on the way (1×1 projections, nearest upsampling, a depthwise-separable block
per level), so small objects are seen at stride 4 with the context of stride 32. Two depthwise-separable
blocks then feed two 1×1 convolutions per location: four distances to the box's sides (softplus × stride,
so they are positive and start near the location's own cell) and C class logits (the bias starts at a 1 %
prior, as RetinaNet's, so the many negatives do not swamp the first steps).

The output is decoded already, (N, A, 4 + C + 3): the box x1, y1, x2, y2 in input pixels, the class logits,
and the location's x, y and stride, which the loss (edgemtl.kinds.detection_loss) assigns boxes by. The
export slices off what it needs; the location columns are constants there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.model.blocks import ConvBnAct, DepthwiseSeparable

PRIOR = 0.01  # the initial probability of every class at every location


class DetectionHead(nn.Module):
    def __init__(
        self, encoder_channels: Sequence[int], reductions: Sequence[int], width: int, num_classes: int, stride: int
    ) -> None:
        super().__init__()
        if stride not in reductions:
            raise ConfigError(
                f"detection stride {stride} is not among the encoder's reductions {list(reductions)}: "
                f"expected one of {', '.join(str(r) for r in reductions if r >= 4)}"
            )
        self.level = list(reductions).index(stride)
        self.stride = stride
        self.lateral = nn.ModuleList(ConvBnAct(c, width, 1) for c in encoder_channels[self.level :])
        self.merge = nn.ModuleList(DepthwiseSeparable(width, width) for _ in encoder_channels[self.level + 1 :])
        self.tower = nn.Sequential(DepthwiseSeparable(width, width), DepthwiseSeparable(width, width))
        self.box = nn.Conv2d(width, 4, 1)
        self.classes = nn.Conv2d(width, num_classes, 1)
        for layer in (self.box, self.classes):  # small weights: every location starts at the prior
            nn.init.normal_(layer.weight, std=0.01)
        nn.init.constant_(self.classes.bias, -math.log((1 - PRIOR) / PRIOR))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        maps = features[self.level :]
        x = self.lateral[-1](maps[-1])
        for index in range(len(maps) - 2, -1, -1):  # coarse to fine
            x = F.interpolate(x, size=maps[index].shape[-2:], mode="nearest") + self.lateral[index](maps[index])
            x = self.merge[index](x)
        x = self.tower(x)
        batch, _, height, width = x.shape
        distances = F.softplus(self.box(x)).flatten(2).transpose(1, 2) * self.stride  # (N, A, 4): l, t, r, b
        logits = self.classes(x).flatten(2).transpose(1, 2)  # (N, A, C)
        ys = (torch.arange(height, device=x.device, dtype=x.dtype) + 0.5) * self.stride
        xs = (torch.arange(width, device=x.device, dtype=x.dtype) + 0.5) * self.stride
        points = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(1, -1, 2)  # (1, A, 2) x, y
        boxes = torch.cat([points - distances[..., :2], points + distances[..., 2:]], dim=-1)
        where = torch.cat([points, torch.full_like(points[..., :1], float(self.stride))], dim=-1)
        return torch.cat([boxes, logits, where.expand(batch, -1, -1)], dim=-1)
