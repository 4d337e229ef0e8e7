"""The detection head: anchor-free, one prediction per location of a fine grid (FCOS / YOLOv8-like).

A light top-down path (as a feature pyramid's) carries the coarsest encoder map back to the tower's stride,
adding each finer encoder map on the way (1×1 projections, nearest upsampling, a depthwise-separable block
per level); two depthwise-separable blocks (the tower) follow. By default the output grid is stride 4 (small
objects) but the blocks run at stride 8 (`tower_stride`): the stride-4 encoder map joins the path at
stride 8 through a 3×3 stride-2 convolution, and each stride-8 location predicts the 2 × 2 stride-4
locations of its cell with its own 1×1 weights per location (a pixel shuffle of the outputs). Only that
projection reads a stride-4 feature map; the blocks on the 96×160 maps of a 384×640 frame were bound by
memory, not arithmetic, and cost 1.6× the model's time for 1.29× its FLOPs (docs/training.md, "What it costs
at run time"), and were no more accurate ("Which head"). `tower_stride` = the output stride gives that
earlier head, whose parameter names this one keeps.

Per location: four distances to the box's sides (softplus × stride, so they are positive and start near
the location's own cell) and C class logits (the bias starts at a 1 % prior, as RetinaNet's, so the many
negatives do not swamp the first steps). Softplus is written as relu(x) − log σ(|x|): ONNX Runtime's Softplus
kernel is not vectorized (0.5 ms on a 4 × 96 × 160 map, these operators 0.1 ms together).

The output is decoded already, (N, A, 4 + C + 3): the box x1, y1, x2, y2 in input pixels, the class logits,
and the location's x, y and stride, which the loss (edgemtl.kinds.detection_loss) assigns boxes by. With
r × r locations per tower cell the A rows run cell position first (`_per_location`); the location columns
say where each is. That is what training and its loss see. The exported graph asks for the head's parts
instead (`graph_parts`): the raw distances and logits per location and the constant location corners, so the
selection ranks anchors by their raw logits and decodes boxes for the M candidates it keeps only; the
A-sized decode, the (N, A, 4 + C + 3) concatenation and its slices then never run (docs/training.md, "What it
costs at run time").
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.kinds.box_decode import DetectionParts, softplus
from edgemtl.model.blocks import ConvBnAct, DepthwiseSeparable

PRIOR = 0.01  # the initial probability of every class at every location


class DetectionHead(nn.Module):
    """`stride`: the output stride (one prediction per location there); `tower_stride` (≥ `stride`, default
    `stride`): where the path's blocks and the tower run, `width` their channels. With r = tower_stride /
    stride > 1, the stride-`stride` encoder map joins the path at the tower's level (before its merge block)
    through an (r + 1)×(r + 1) stride-r convolution, and the 1×1 output convs predict r² locations per cell."""

    def __init__(
        self,
        encoder_channels: Sequence[int],
        reductions: Sequence[int],
        width: int,
        num_classes: int,
        stride: int,
        tower_stride: int | None = None,
    ) -> None:
        super().__init__()
        tower_stride = stride if tower_stride is None else tower_stride
        for name, value in (("stride", stride), ("tower stride", tower_stride)):
            if value not in reductions:
                raise ConfigError(
                    f"detection {name} {value} is not among the encoder's reductions {list(reductions)}: "
                    f"expected one of {', '.join(str(r) for r in reductions if r >= 4)}"
                )
        if tower_stride < stride:
            raise ConfigError(f"detection tower stride {tower_stride}: expected at least the stride {stride}")
        self.out_level = list(reductions).index(stride)
        self.level = list(reductions).index(tower_stride)
        self.stride = stride
        self.cells = tower_stride // stride  # r: output locations per tower location, along each side
        self.lateral = nn.ModuleList(ConvBnAct(c, width, 1) for c in encoder_channels[self.level :])
        self.merge = nn.ModuleList(DepthwiseSeparable(width, width) for _ in encoder_channels[self.level + 1 :])
        self.tower = nn.Sequential(DepthwiseSeparable(width, width), DepthwiseSeparable(width, width))
        if self.cells > 1:
            r = self.cells
            self.fine = nn.Sequential(  # (r + 1)² kernel: each cell's r × r pixels and a pixel around them
                nn.Conv2d(encoder_channels[self.out_level], width, r + 1, stride=r, padding=r // 2, bias=False),
                nn.BatchNorm2d(width),
            )
        self.box = nn.Conv2d(width, 4 * self.cells**2, 1)
        self.classes = nn.Conv2d(width, num_classes * self.cells**2, 1)
        for layer in (self.box, self.classes):  # small weights: every location starts at the prior
            nn.init.normal_(layer.weight, std=0.01)
        nn.init.constant_(self.classes.bias, -math.log((1 - PRIOR) / PRIOR))
        self.graph_parts = False  # True within `graph_parts`: forward returns DetectionParts, for the graph

    def forward(self, features: Sequence[Tensor]) -> Tensor | DetectionParts:
        maps = features[self.level :]
        x = self._lateral(len(maps) - 1, features)
        for index in range(len(maps) - 2, -1, -1):  # coarse to fine
            x = _upsample(x, maps[index].shape[-2:]) + self._lateral(index, features)
            x = self.merge[index](x)
        x = self.tower(x)
        batch, _, height, width = x.shape
        points = self._points(height, width, x).reshape(-1, 2)  # (A, 2) x, y
        sides = torch.tensor([-1.0, -1.0, 1.0, 1.0], device=x.device, dtype=x.dtype) * self.stride
        logits = self._per_location(self.classes(x))  # (N, A, C)
        if self.graph_parts:
            return DetectionParts(self._per_location(self.box(x)), logits, points.repeat(1, 2), sides)
        distances = self._per_location(softplus(self.box(x)))  # (N, A, 4): l, t, r, b in strides
        # x − l, y − t, x + r, y + b as one multiply-add (no slices or concatenation of the A × 4 map)
        boxes = points.repeat(1, 2) + distances * sides
        where = torch.cat([points, torch.full_like(points[:, :1], float(self.stride))], dim=-1)
        return torch.cat([boxes, logits, where.expand(batch, -1, -1)], dim=-1)

    def _lateral(self, index: int, features: Sequence[Tensor]) -> Tensor:
        """The path's input at level `index` above the tower's; at the tower's own, the finer map's projection
        joins it, so the merge block and the tower both see the fine detail (0.27 mAP against 0.23 when it
        joined after the merge, 4 seeds; docs/training.md)."""
        x = self.lateral[index](features[self.level + index])
        return x + self.fine(features[self.out_level]) if index == 0 and self.cells > 1 else x

    def _per_location(self, maps: Tensor) -> Tensor:
        """(N, r·r·k, H, W), channels (row in cell, column in cell, k) → (N, A, k) with A = r·r·H·W, cell
        position major: one batched transpose of the last two axes, not the 6-D one a pixel shuffle needs.
        The locations' own columns (`_points`) follow the same order; nothing else depends on it."""
        batch, _, height, width = maps.shape
        groups = self.cells**2
        return (
            maps.reshape(batch, groups, -1, height * width).transpose(2, 3).reshape(batch, groups * height * width, -1)
        )

    def _points(self, height: int, width: int, like: Tensor) -> Tensor:
        """(r, r, H, W, 2) the x, y in input pixels of each output location, in `_per_location`'s order."""
        r, options = self.cells, {"device": like.device, "dtype": like.dtype}
        cell = torch.arange(r, **options)
        xs = ((torch.arange(width, **options) * r).unsqueeze(0) + cell.unsqueeze(1) + 0.5) * self.stride  # (r, W)
        ys = ((torch.arange(height, **options) * r).unsqueeze(0) + cell.unsqueeze(1) + 0.5) * self.stride  # (r, H)
        grid_x = xs.reshape(1, r, 1, width).expand(r, r, height, width)
        grid_y = ys.reshape(r, 1, height, 1).expand(r, r, height, width)
        return torch.stack([grid_x, grid_y], dim=-1)


def _upsample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest upsampling to `size`; by a constant whole factor where the size is one, so that ONNX Runtime's CPU
    layout pass keeps the Resize in its blocked channel layout (NCHWc) instead of reordering the maps into and
    out of it around each one. The same pixels either way."""
    height, width = (int(v) for v in x.shape[-2:])
    if size[0] % height == 0 and size[1] % width == 0:
        return F.interpolate(x, scale_factor=(size[0] // height, size[1] // width), mode="nearest")
    return F.interpolate(x, size=tuple(size), mode="nearest")


@contextmanager
def graph_parts(model: nn.Module) -> Iterator[None]:
    """Within: every detection head in `model` returns its DetectionParts (the export wrapper's forward, so the
    graph decodes only the boxes its selection keeps); outside, training and validation get the decoded output."""
    heads = [module for module in model.modules() if isinstance(module, DetectionHead)]
    for head in heads:
        head.graph_parts = True
    try:
        yield
    finally:
        for head in heads:
            head.graph_parts = False
