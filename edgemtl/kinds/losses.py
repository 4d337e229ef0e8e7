"""The losses the categorical kinds offer by name, on raw logits (PyTorch: imported when a loss is computed).

Class-id losses (classification: logits (B, C), targets (B,); segmentation: (B, C, H, W), (B, H, W)) skip
targets equal to the kind's missing marker and return the mean over the labelled items; `weights` (C,)
multiplies each item's loss by its true class's weight (the mean stays over items, so weights normalised
to an expected value of 1 keep the loss's scale). Binary losses (multilabel) return one value per entry;
`weights` (L,) is the weight of a positive (BCE's pos_weight).

- ce: cross-entropy.
- focal: (1 - p_t)^γ · CE (Lin et al. 2017), γ = FOCAL_GAMMA: confident, easy items count little.
- dice_ce: CE plus the soft Dice loss over the classes (1 - mean Dice), which scores every class by its
  overlap whatever its share of pixels, so a thin class weighs as much as the road.
- ohem: online hard example mining (Shrivastava et al. 2016): CE over the pixels whose true class has
  probability below OHEM_THRESHOLD, and never fewer than the hardest OHEM_MIN_KEPT of the labelled ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from edgemtl.kinds.layouts import mean_over

FOCAL_GAMMA = 2.0
DICE_SMOOTH = 1.0  # added to Dice's numerator and denominator: a class absent from target and prediction scores 1
OHEM_THRESHOLD = 0.7  # a pixel is hard while its true class's probability is below this (mmsegmentation's default)
OHEM_MIN_KEPT = 0.125  # the hardest eighth of a batch's labelled pixels is kept even when they are easy


def _true_class(logits: Tensor, target: Tensor, missing: int) -> tuple[Tensor, Tensor, Tensor]:
    """Which items are labelled, their class ids (0 where unlabelled) and log-probabilities (B, C, ...)."""
    known = target != missing
    ids = torch.where(known, target.long(), 0)
    return known, ids, F.log_softmax(logits, dim=1)


def _weighted_ce(log_probs: Tensor, ids: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    """Each item's cross-entropy times its class weight, and the unweighted log-probability of its class."""
    picked = log_probs.gather(1, ids.unsqueeze(1)).squeeze(1)
    scale = weights[ids] if weights is not None else 1.0
    return -picked * scale, picked


def cross_entropy(logits: Tensor, target: Tensor, missing: int, weights: Tensor | None = None) -> Tensor:
    known, ids, log_probs = _true_class(logits, target, missing)
    return mean_over(_weighted_ce(log_probs, ids, weights)[0], known)


def focal(
    logits: Tensor, target: Tensor, missing: int, weights: Tensor | None = None, gamma: float = FOCAL_GAMMA
) -> Tensor:
    known, ids, log_probs = _true_class(logits, target, missing)
    ce, picked = _weighted_ce(log_probs, ids, weights)
    return mean_over((1 - picked.exp()).pow(gamma) * ce, known)


def dice(logits: Tensor, target: Tensor, missing: int) -> Tensor:
    """1 - the mean over classes of the soft Dice coefficient, over the labelled items of the batch."""
    known, ids, log_probs = _true_class(logits, target, missing)
    probs = log_probs.exp()
    truth = F.one_hot(ids, probs.shape[1]).movedim(-1, 1).to(probs.dtype)  # (B, C, ...)
    mask = known.unsqueeze(1).to(probs.dtype)
    axes = [0, *range(2, probs.dim())]  # every axis but the class
    overlap = (probs * truth * mask).sum(axes)
    sizes = (probs * mask).sum(axes) + (truth * mask).sum(axes)
    return 1 - ((2 * overlap + DICE_SMOOTH) / (sizes + DICE_SMOOTH)).mean()


def dice_ce(logits: Tensor, target: Tensor, missing: int, weights: Tensor | None = None) -> Tensor:
    return cross_entropy(logits, target, missing, weights) + dice(logits, target, missing)


def ohem(logits: Tensor, target: Tensor, missing: int, weights: Tensor | None = None) -> Tensor:
    known, ids, log_probs = _true_class(logits, target, missing)
    ce, picked = _weighted_ce(log_probs, ids, weights)
    count = int(known.sum())
    if count == 0:
        return mean_over(ce, known)
    hard = known & (picked.detach() < math.log(OHEM_THRESHOLD))
    hardness = torch.where(known, -picked.detach(), -math.inf).flatten()
    kth = hardness.topk(max(1, math.ceil(OHEM_MIN_KEPT * count))).values[-1]
    return mean_over(ce, hard | (known & (-picked.detach() >= kth)))


#: name → loss(logits, target, missing marker, class weights or None) → the mean over labelled items.
CLASS_ID_LOSSES: dict[str, Callable[..., Tensor]] = {
    "ce": cross_entropy,
    "focal": focal,
    "dice_ce": dice_ce,
    "ohem": ohem,
}


def binary_cross_entropy(logits: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weights, reduction="none")


def binary_focal(logits: Tensor, target: Tensor, weights: Tensor | None = None, gamma: float = FOCAL_GAMMA) -> Tensor:
    probability = torch.sigmoid(logits)
    p_true = torch.where(target > 0.5, probability, 1 - probability)
    return (1 - p_true).pow(gamma) * binary_cross_entropy(logits, target, weights)


#: name → loss(logits, 0/1 targets, positive weights or None) → one value per entry.
BINARY_LOSSES: dict[str, Callable[..., Tensor]] = {"bce": binary_cross_entropy, "focal": binary_focal}
