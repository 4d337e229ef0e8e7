"""A detection head's output before decoding, and the decode: what the exported graph's selection reads
(edgemtl.kinds.box_select), so the file decodes only the boxes it selects, and what the head itself decodes
with for training (edgemtl.model.detection). Here, below the model, so the kind's postprocessing can read it."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from edgemtl.kinds.box_select import take_rows


class DetectionParts(NamedTuple):
    """The head's output before decoding, what the exported graph's selection reads (edgemtl.kinds.box_select):
    a box is `corners` + softplus(`distances`) × `sides` at its location, decoded only where selected."""

    distances: Tensor  # (N, A, 4) raw l, t, r, b outputs, before softplus
    logits: Tensor  # (N, A, C) class logits
    corners: Tensor  # (A, 4) the location's x, y, x, y in input pixels (a constant in the graph)
    sides: Tensor  # (4,) −stride, −stride, stride, stride: distances in strides → x1, y1, x2, y2 offsets

    def boxes_at(self, index: Tensor) -> Tensor:
        """(N, M) location indices → (N, M, 4) boxes, the same numbers the decoded output holds there."""
        corners = self.corners.index_select(0, index.reshape(-1)).reshape(*index.shape, 4)
        return corners + softplus(take_rows(self.distances, index)) * self.sides

    def scaled(self, scale_x: float, scale_y: float) -> DetectionParts:
        """The boxes in a frame stretched by `scale_x`, `scale_y` (edgemtl.model.frame)."""
        scale = torch.tensor([scale_x, scale_y, scale_x, scale_y], device=self.sides.device, dtype=self.sides.dtype)
        return self._replace(corners=self.corners * scale, sides=self.sides * scale)


def softplus(x: Tensor) -> Tensor:
    """log(1 + eˣ) as relu(x) − log σ(|x|): the same function as F.softplus, from operators ONNX Runtime
    vectorizes (its Softplus kernel took 0.5 ms on a 4 × 96 × 160 map, these 0.1 ms together), and finite in
    fp16, where σ(|x|) stays in [0.5, 1)."""
    return F.relu(x) - torch.log(torch.sigmoid(x.abs()))
