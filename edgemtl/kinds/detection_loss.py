"""The detection loss: which locations answer for which box (the assigner), then quality focal loss for the
classes and GIoU for the boxes. PyTorch; imported by `Detection.loss` when called, never by the runtime.

The head's raw output (edgemtl.model.detection) is (N, A, 4 + C + 3) per location: the decoded box x1, y1,
x2, y2 in input pixels, C class logits, and the location's own x, y and stride, so the loss needs nothing
but the output and the targets (N, MAX_BOXES, 5) (edgemtl.kinds.boxes).

Two assigners, chosen by the task's `extra.loss` and compared in benchmarks/detection_heads.py:
- "center" (FCOS's centre sampling, Tian et al. 2019/2020): a location is positive for a box whose centre is
  within CENTER_RADIUS strides of it and which holds it; the smallest such box wins; a box too small to hold
  any location takes its nearest one. Fixed, so it learns from the first step.
- "tal" (the task-aligned assigner of TOOD, Feng et al. 2021, as in YOLOv8): per box, the TOPK locations
  inside it (or near its centre) with the highest score^ALPHA · IoU^BETA of their own prediction.
Either way the class target of a positive is the IoU of its predicted box with its box (TAL: the alignment,
scaled to the box's best IoU), so a score ranks boxes by how well they fit — what mAP@0.5:0.95 rewards —
trained by quality focal loss (GFL, Li et al. 2020); negatives have target 0. Boxes train with 1 − GIoU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CENTER_RADIUS = 2.5  # strides, centre sampling
TOPK, ALPHA, BETA = 10, 1.0, 6.0  # the task-aligned assigner's settings (YOLOv8's)
BOX_WEIGHT = 2.0  # GIoU against quality focal loss (GFL's balance)


def pairwise_iou(first: Tensor, second: Tensor) -> Tensor:
    """(N, M, 4), (N, A, 4) → (N, M, A) IoU."""
    low = torch.maximum(first[:, :, None, :2], second[:, None, :, :2])
    high = torch.minimum(first[:, :, None, 2:], second[:, None, :, 2:])
    inter = (high - low).clamp(min=0).prod(-1)
    area1 = (first[..., 2:] - first[..., :2]).clamp(min=0).prod(-1)
    area2 = (second[..., 2:] - second[..., :2]).clamp(min=0).prod(-1)
    return inter / (area1[:, :, None] + area2[:, None, :] - inter).clamp(min=1e-6)


def iou_and_giou(first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise IoU and generalized IoU of (..., 4) boxes."""
    low = torch.maximum(first[..., :2], second[..., :2])
    high = torch.minimum(first[..., 2:], second[..., 2:])
    inter = (high - low).clamp(min=0).prod(-1)
    union = (first[..., 2:] - first[..., :2]).clamp(min=0).prod(-1) + (second[..., 2:] - second[..., :2]).prod(-1)
    union = (union - inter).clamp(min=1e-6)
    iou = inter / union
    hull = (torch.maximum(first[..., 2:], second[..., 2:]) - torch.minimum(first[..., :2], second[..., :2])).prod(-1)
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


def _inside(points: Tensor, boxes: Tensor) -> Tensor:
    """(A, 2) points, (N, M, 4) boxes → (N, M, A) strictly inside."""
    x, y = points[:, 0], points[:, 1]
    return (x > boxes[..., 0:1]) & (x < boxes[..., 2:3]) & (y > boxes[..., 1:2]) & (y < boxes[..., 3:4])


def _near_center(points: Tensor, strides: Tensor, boxes: Tensor, radius: float) -> Tensor:
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2  # (N, M, 2)
    reach = radius * strides  # (A,)
    return ((points[:, 0] - centre[..., 0:1]).abs() < reach) & ((points[:, 1] - centre[..., 1:2]).abs() < reach)


def _nearest(points: Tensor, boxes: Tensor) -> Tensor:
    """(N, M, A): each box's one location nearest its centre, so no box is left without a positive."""
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    distance = ((points[None, None] - centre[:, :, None]) ** 2).sum(-1)
    return F.one_hot(distance.argmin(-1), points.shape[0]).bool()


def assign_center(
    pred: Tensor, scores: Tensor, points: Tensor, strides: Tensor, boxes: Tensor, classes: Tensor, valid: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(foreground (N, A), box index (N, A), class target (N, A)) by centre sampling."""
    candidate = (_inside(points, boxes) & _near_center(points, strides, boxes, CENTER_RADIUS)) | _nearest(points, boxes)
    candidate &= valid[..., None]
    area = (boxes[..., 2:] - boxes[..., :2]).prod(-1)  # (N, M)
    cost = torch.where(candidate, area[..., None], torch.inf)
    index = cost.argmin(1)  # (N, A)
    foreground = candidate.any(1)
    matched = boxes.gather(1, index[..., None].expand(-1, -1, 4))
    iou, _ = iou_and_giou(pred, matched)
    return foreground, index, torch.where(foreground, iou.clamp(min=0.0), 0.0)


def assign_tal(
    pred: Tensor, scores: Tensor, points: Tensor, strides: Tensor, boxes: Tensor, classes: Tensor, valid: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(foreground (N, A), box index (N, A), class target (N, A)) by task alignment."""
    iou = pairwise_iou(boxes, pred)  # (N, M, A)
    class_score = scores.transpose(1, 2).gather(1, classes.clamp(min=0)[..., None].expand(-1, -1, pred.shape[1]))
    allowed = _inside(points, boxes) | _near_center(points, strides, boxes, 1.0) | _nearest(points, boxes)
    allowed &= valid[..., None]
    align = torch.where(allowed, class_score.pow(ALPHA) * iou.pow(BETA) + 1e-9 * iou, 0.0)
    top = align.topk(min(TOPK, align.shape[-1]), dim=-1).indices
    chosen = torch.zeros_like(allowed).scatter_(-1, top, True) & allowed
    index = torch.where(chosen, iou, -1.0).argmax(1)  # a location chosen by several boxes: the best fitting
    foreground = chosen.any(1)
    owner = F.one_hot(index, boxes.shape[1]).transpose(1, 2).bool() & chosen  # (N, M, A)
    align = torch.where(owner, align, 0.0)
    best_align = align.amax(-1, keepdim=True).clamp(min=1e-9)
    best_iou = torch.where(owner, iou, 0.0).amax(-1, keepdim=True)
    target = (align / best_align * best_iou).amax(1)
    return foreground, index, torch.where(foreground, target, 0.0)


ASSIGNERS = {"center": assign_center, "tal": assign_tal}


def detection_loss(output: Tensor, target: Tensor, num_classes: int, assigner: str) -> Tensor:
    """Mean loss over the labelled images of a batch; 0 with zero gradients when none is labelled.

    An image labelled with no objects has only negatives; an unlabelled image (NaN target) takes no part.
    """
    target = target.float()
    labelled = ~torch.isnan(target[:, 0, 0])
    if not bool(labelled.any()):
        return output.sum() * 0.0
    output, target = output[labelled], target[labelled]
    real = target[..., 0] >= 0
    order = (~real).to(torch.uint8).argsort(dim=1, stable=True)  # each image's objects first, then padding
    rows = max(int(real.sum(1).max()), 1)  # padding past every image's objects: cut (64 rows → a few)
    target = target.gather(1, order[:, :rows, None].expand(-1, -1, 5))
    pred, logits = output[..., :4], output[..., 4 : 4 + num_classes]
    points, strides = output[0, :, 4 + num_classes : 6 + num_classes].detach(), output[0, :, -1].detach()
    classes, boxes = target[..., 0].long(), target[..., 1:5]
    valid = classes >= 0
    with torch.no_grad():
        foreground, index, quality = ASSIGNERS[assigner](
            pred.detach(), logits.detach().sigmoid(), points, strides, boxes, classes, valid
        )
    matched_class = classes.gather(1, index).clamp(min=0)
    soft = F.one_hot(matched_class, num_classes).float() * quality[..., None]
    probability = logits.sigmoid()
    focal = F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * (probability - soft).abs().pow(2)
    positives = foreground.sum().clamp(min=1)
    class_loss = focal.sum() / positives
    matched = boxes.gather(1, index[..., None].expand(-1, -1, 4))
    _, giou = iou_and_giou(pred[foreground], matched[foreground])
    box_loss = (1 - giou).sum() / positives
    return class_loss + BOX_WEIGHT * box_loss
