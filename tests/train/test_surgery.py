"""PCGrad and CAGrad: the properties that define them, on constructed gradients, and on the trainer's path."""

from __future__ import annotations

import itertools

import pytest
import torch

from edgemtl.tasks import TaskKind, TaskSpec
from edgemtl.train.surgery import cagrad, pcgrad
from edgemtl.train.weighting import create_weighting
from tests.train.test_weighting import NO_AMP, TwoHeads

CONFLICTING = torch.tensor([[1.0, 0.0, 0.5], [-0.8, 0.3, 0.0]])  # dot product -0.8: the tasks fight


def test_pcgrad_leaves_no_conflicting_pair_after_surgery():
    projected = pcgrad(CONFLICTING, [[0, 1], [1, 0]])
    for i, j in itertools.permutations(range(2)):
        assert projected[i] @ CONFLICTING[j] >= -1e-6  # each projected gradient no longer opposes the other task
    assert projected[0] @ CONFLICTING[1] == pytest.approx(0.0, abs=1e-6)  # exactly its orthogonal part


def test_pcgrad_changes_nothing_without_conflict_and_projects_against_several_tasks():
    agreeing = torch.tensor([[1.0, 0.2], [0.5, 1.0]])
    assert torch.equal(pcgrad(agreeing, [[1], [0]]), agreeing)
    generator = torch.Generator().manual_seed(0)
    grads = torch.randn(4, 10, generator=generator)
    projected = pcgrad(grads, [[j for j in range(4) if j != i] for i in range(4)])
    last = projected[0] - grads[0]  # a combination of the others' gradients only
    assert torch.linalg.matrix_rank(torch.stack([*grads[1:], last])) == 3


def test_cagrad_improves_the_worst_task_and_is_the_mean_at_c_zero():
    mean = CONFLICTING.mean(0)
    assert torch.allclose(cagrad(CONFLICTING, c=0.0), mean)
    update = cagrad(CONFLICTING, c=0.5)
    assert (CONFLICTING @ update).min() > (CONFLICTING @ mean).min()  # the mean moves task 1 backwards
    assert (CONFLICTING @ update).min() > 0
    # within the ball around the mean that CAGrad searches (radius c·‖g0‖), before its 1 / (1 + c²) rescale
    assert (update * 1.25 - mean).norm() <= 0.5 * mean.norm() + 1e-5


@pytest.mark.parametrize("name", ["pcgrad", "cagrad"])
def test_surgery_sets_the_shared_gradient_and_leaves_the_heads_their_own(name):
    problem = TwoHeads()
    tasks = (TaskSpec("big", TaskKind.REGRESSION), TaskSpec("small", TaskKind.REGRESSION))
    weighting = create_weighting(name, tasks)
    shared = [problem.shared.weight, problem.shared.bias]
    weighted = weighting.backward(problem.losses(), shared, NO_AMP)
    grads = []
    for loss in problem.losses().values():  # the two share the shared layer's graph
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, shared, retain_graph=True)]))
    grads = torch.stack(grads)
    expected = pcgrad(grads, [[1], [0]]).sum(0) if name == "pcgrad" else cagrad(grads)
    assert torch.allclose(torch.cat([p.grad.flatten() for p in shared]), expected, atol=1e-6)
    head_grad = torch.autograd.grad(problem.losses()["big"], problem.heads["big"].weight)[0]
    assert torch.allclose(problem.heads["big"].weight.grad, head_grad, atol=1e-6)
    assert set(weighted) == {"big", "small"}
