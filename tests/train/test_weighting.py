"""Task weighting methods: each moves its weights the way its paper says, resumes exactly, and trains."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from torch import nn

from edgemtl.data.synthetic import make_dataset
from edgemtl.errors import ConfigError
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec
from edgemtl.train import TrainConfig, train
from edgemtl.train.weighting import WEIGHTINGS, TaskWeighting, create_weighting
from tests.helpers import train_split

TASKS = (
    TaskSpec("big", TaskKind.REGRESSION),
    TaskSpec("small", TaskKind.REGRESSION),
)
NO_AMP = torch.amp.GradScaler("cuda", enabled=False)  # what the trainer passes on a CPU


class TwoHeads(nn.Module):
    """A shared linear layer and one linear head per task; task "small" has a 100× smaller loss scale."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shared = nn.Linear(4, 8)
        self.heads = nn.ModuleDict({"big": nn.Linear(8, 1), "small": nn.Linear(8, 1)})
        self.inputs = torch.randn(16, 4)

    def losses(self) -> dict[str, torch.Tensor]:
        features = torch.relu(self.shared(self.inputs))
        return {
            "big": self.heads["big"](features).sub(3).pow(2).mean(),
            "small": 0.01 * self.heads["small"](features).sub(3).pow(2).mean(),
        }


def step(weighting: TaskWeighting, problem: TwoHeads) -> None:
    """One training step as the trainer does it, without moving the network (the losses stay put)."""
    problem.zero_grad()
    weighting.zero_grad()
    weighting.backward(problem.losses(), problem.shared.weight, NO_AMP)
    with torch.no_grad():
        for parameter in weighting.parameters():
            if parameter.grad is not None:
                parameter -= 0.1 * parameter.grad


def test_unknown_method_lists_every_valid_name():
    with pytest.raises(
        ConfigError, match="unknown task weighting 'dwa2': expected one of fixed, uncertainty, dwa, gradnorm"
    ):
        create_weighting("dwa2", TASKS)


def test_fixed_weights_come_from_the_task_specs():
    weighting = create_weighting("fixed", (TaskSpec("a", TaskKind.REGRESSION, weight=0.5), TASKS[1]))
    losses = {"a": torch.tensor(2.0), "small": torch.tensor(3.0)}
    assert weighting.current_weights() == {"a": 0.5, "small": 1.0}
    assert float(weighting(losses)) == pytest.approx(4.0)


def test_uncertainty_learns_inverse_loss_weights():
    weighting = create_weighting("uncertainty", TASKS)
    losses = {"big": torch.tensor(4.0), "small": torch.tensor(0.25)}
    weighting(losses).backward()
    # d/ds (exp(-s) L + s) = 1 - L at s = 0
    assert weighting.log_variances.grad.tolist() == pytest.approx([-3.0, 0.75])
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    weights = weighting.current_weights()
    assert weights["big"] == pytest.approx(0.25, rel=1e-2) and weights["small"] == pytest.approx(4.0, rel=1e-2)


def test_dwa_upweights_the_task_whose_loss_falls_slower():
    weighting = create_weighting("dwa", TASKS)
    weighting.end_epoch({"big": 1.0, "small": 1.0})
    assert weighting.current_weights() == {"big": 1.0, "small": 1.0}, "weights stay 1 until two epochs are seen"
    weighting.end_epoch({"big": 0.5, "small": 0.9})  # big halves, small barely moves
    weights = weighting.current_weights()
    assert weights["small"] > weights["big"] > 0
    assert sum(weights.values()) == pytest.approx(2.0)
    expected = 2 * math.exp(0.9 / 2) / (math.exp(0.5 / 2) + math.exp(0.9 / 2))
    assert weights["small"] == pytest.approx(expected, rel=1e-6)


def test_gradnorm_upweights_the_task_with_the_smaller_gradient():
    weighting = create_weighting("gradnorm", TASKS)
    problem = TwoHeads()
    for _ in range(20):
        step(weighting, problem)
        weights = weighting.current_weights()
        assert all(w > 0 for w in weights.values())
        assert sum(weights.values()) == pytest.approx(2.0)
    assert weights["small"] > 1.3 > 0.7 > weights["big"]
    assert problem.shared.weight.grad is not None, "the network's own backward still runs"


def test_gradnorm_targets_the_mean_of_the_weighted_gradient_norms():
    """Chen et al. 2018: target_i = mean_j(w_j·‖∇L_j‖) · r_i^α. Already balanced G_i at equal rates: no move."""
    weighting = create_weighting("gradnorm", TASKS)
    with torch.no_grad():
        weighting.task_weights.copy_(torch.tensor([1.5, 0.5]))
    # G = (1.5·1, 0.5·3) = (1.5, 1.5) = mean(G); the unweighted mean (2) would push both weights up, unevenly.
    weighting._update(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 3.0]))
    assert weighting.current_weights() == pytest.approx({"big": 1.5, "small": 0.5})


def test_gradnorm_holds_its_weights_on_a_batch_without_labels_for_a_task():
    """Partial labels: a task with no label in the batch has a zero loss and no gradient to balance."""
    weighting = create_weighting("gradnorm", TASKS)
    problem = TwoHeads()
    step(weighting, problem)
    before = weighting.current_weights()
    problem.zero_grad()
    unlabelled = {**problem.losses(), "small": torch.zeros((), requires_grad=True)}
    weighting.backward(unlabelled, problem.shared.weight, NO_AMP)
    assert weighting.current_weights() == before


def test_uncertainty_leaves_a_task_alone_on_a_batch_without_its_labels():
    """Partial labels: without a label, + s_i alone would raise the task's weight on every such batch."""
    weighting = create_weighting("uncertainty", TASKS)
    problem = TwoHeads()
    unlabelled = {**problem.losses(), "small": torch.zeros((), requires_grad=True)}
    weighting.backward(unlabelled, problem.shared.weight, NO_AMP)
    gradient = dict(zip(weighting.names, weighting.log_variances.grad.tolist()))
    assert gradient["small"] == 0 and gradient["big"] != 0


def test_gradnorm_is_unaffected_by_the_amp_loss_scale():
    """Under AMP the gradients are taken scaled; GradNorm must measure them unscaled."""
    results = []
    for scaler in (NO_AMP, torch.amp.GradScaler("cpu", init_scale=1024.0)):
        weighting = create_weighting("gradnorm", TASKS)
        problem = TwoHeads()
        for _ in range(3):
            problem.zero_grad()
            weighting.backward(problem.losses(), problem.shared.weight, scaler)
        results.append(weighting.current_weights())
    assert results[1] == pytest.approx(results[0], rel=1e-5)


@pytest.mark.parametrize("name", list(WEIGHTINGS))
def test_state_dict_round_trip_resumes_the_same_weights(name):
    """Save mid-run as a checkpoint would (weights_only load), restore into a fresh one: both continue alike."""
    original = create_weighting(name, TASKS)
    problem = TwoHeads()
    for epoch_losses in ({"big": 1.0, "small": 1.0}, {"big": 0.5, "small": 0.9}):
        step(original, problem)
        original.end_epoch(epoch_losses)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = create_weighting(name, TASKS)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.current_weights() == original.current_weights()
    for weighting in (original, restored):
        step(weighting, problem)
        weighting.end_epoch({"big": 0.4, "small": 0.85})
    assert restored.current_weights() == pytest.approx(original.current_weights())


@pytest.fixture(scope="module")
def data64():
    return make_dataset(40, (64, 64), seed=0)


@pytest.mark.parametrize("name", list(WEIGHTINGS))
def test_one_epoch_with_each_method_logs_raw_and_weighted_losses_and_weights(name, data64, tmp_path):
    lines: list[str] = []
    config = TrainConfig(preset="nano", input_size=(64, 64), epochs=1, batch_size=16, device="cpu", weighting=name)
    train_split(config, NAVIGATION_TASKS, data64, (32, 40), tmp_path, log=lines.append)
    (entry,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    names = {t.name for t in NAVIGATION_TASKS}
    for key in ("train_loss", "weighted_loss", "task_weights"):
        assert set(entry[key]) == names and all(math.isfinite(v) for v in entry[key].values())
    if name == "gradnorm":
        assert sum(entry["task_weights"].values()) == pytest.approx(len(names))
    assert all(f"{n} " in lines[-1] for n in names) and "weight " in lines[-1] and "weighted " in lines[-1]


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("name", ["dwa", "gradnorm"])
def test_a_resumed_run_continues_with_the_same_weights(name, tiny_data, tmp_path):
    """The weighting's state travels in last.pt: stopped after epoch 2 and resumed, the run ends as if never stopped."""

    def stop_after_epoch_2(line: str) -> None:
        if line.startswith("epoch   2/"):
            raise Interrupted

    config = TrainConfig(input_size=(32, 32), epochs=4, batch_size=8, device="cpu", weighting=name, plots=False)
    data = (NAVIGATION_TASKS, tiny_data.subset(slice(0, 32)), tiny_data.subset(slice(32, 40)))
    whole = train(config, *data, tmp_path / "whole", progress=False, log=lambda _: None)
    with pytest.raises(Interrupted):
        train(config, *data, tmp_path / "cut", progress=False, log=stop_after_epoch_2)
    resumed = train(config, *data, tmp_path / "cut", progress=False, log=lambda _: None, resume=True)
    assert [e["task_weights"] for e in resumed.history] == [e["task_weights"] for e in whole.history]
    assert whole.history[-1]["task_weights"] != {t.name: 1.0 for t in NAVIGATION_TASKS}, "the weights did move"
