"""Gradient surgery: per-task gradients on the shared parameters, combined so that tasks stop fighting.

Pure functions of the (K, P) matrix of the K tasks' flattened gradients, so their defining properties are
testable on constructed cases; `edgemtl.train.weighting` applies them to the encoder each step. The
behaviour follows LibMTL's (the reference implementations of both papers in one library):

- PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020): each task's gradient,
  wherever it conflicts with another task's (negative dot product), loses its component along that one,
  the others taken in a random order; the shared update is the sum of the projected gradients.
- CAGrad (Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021): the update
  d = g0 + c·‖g0‖·g_w/‖g_w‖ around the mean gradient g0, where g_w = Σ w_i g_i with w on the simplex
  minimising w·(G g0) + c·‖g0‖·‖g_w‖: within a ball of radius c·‖g0‖ around g0, the direction that most
  improves the task that gains least. Rescaled by 1 / (1 + c²) as LibMTL does by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

EPSILON = 1e-8
CAGRAD_C = 0.5  # LibMTL's default radius; c = 0 is plain averaging
_SIMPLEX_STEPS = 300  # exponentiated-gradient steps for CAGrad's task weights (K×K problem: microseconds each)


def pcgrad(grads: Tensor, orders: Sequence[Sequence[int]]) -> Tensor:
    """(K, P) gradients → (K, P) projected ones; `orders[i]`: the order task i meets the others in.

    Projections are onto the other tasks' original gradients, as in the paper and LibMTL.
    """
    projected = grads.clone()
    squared_norms = (grads * grads).sum(1)
    for i, order in enumerate(orders):
        for j in order:
            if j == i:
                continue
            dot = projected[i] @ grads[j]
            if dot < 0:
                projected[i] -= dot / (squared_norms[j] + EPSILON) * grads[j]
    return projected


def cagrad(grads: Tensor, c: float = CAGRAD_C) -> Tensor:
    """(K, P) gradients → the (P,) update direction."""
    mean = grads.mean(0)
    gram = (grads @ grads.T).double().cpu()
    mean_norm = math.sqrt(max(float(gram.mean()), 0.0))  # ‖g0‖ = sqrt(mean of the Gram matrix)
    if c == 0 or mean_norm < EPSILON:
        return mean
    weights = _conflict_averse_weights(gram / mean_norm**2, c).to(grads.device, grads.dtype)
    combined = weights @ grads
    scale = c * mean_norm / (float(combined.norm()) + EPSILON)
    return (mean + scale * combined) / (1 + c**2)


def _conflict_averse_weights(gram: Tensor, c: float) -> Tensor:
    """w on the simplex minimising w·(A·1/K) + c·sqrt(wᵀAw) for a Gram matrix A scaled to ‖g0‖ = 1.

    Exponentiated gradient descent: multiplicative steps keep w on the simplex without a projection.
    """
    count = gram.shape[0]
    linear = gram.mean(1)  # A · (1/K)
    weights = torch.full((count,), 1.0 / count, dtype=gram.dtype)
    for step in range(_SIMPLEX_STEPS):
        quadratic = gram @ weights
        gradient = linear + c * quadratic / math.sqrt(max(float(weights @ quadratic), EPSILON))
        spread = float(gradient.max() - gradient.min())  # steps scaled to it: any gradient size converges
        weights = weights * torch.exp(-(gradient - gradient.min()) / (max(spread, EPSILON) * math.sqrt(step + 1)))
        weights = weights / weights.sum()
    return weights
