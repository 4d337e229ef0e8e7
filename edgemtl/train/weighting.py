"""How per-task losses are combined into the one loss that is minimized, chosen by name.

Every method answers the same small interface, so the trainer never special-cases one:

- `weighted_losses(losses)` → each task's share of the total (their sum is what is minimized);
  `forward(losses)` is that sum.
- `backward(losses, shared, scaler)`, once per training step: backpropagates the total into the
  network (through the AMP grad scaler) and does whatever the method updates per step itself (GradNorm
  moves its weights here); returns the weighted losses for logging. `shared` is the last shared layer's
  parameters the method reads gradients on (`shared_parameters(model)`): the encoder's last convolution
  for GradNorm, every encoder parameter for the gradient-surgery methods (PCGrad, CAGrad).
- `end_epoch(mean_losses)`, once per epoch with the epoch's mean raw training losses (DWA reads them).
- `current_weights()` → the weight each task's loss gets now, for the logs.
- `state_dict()` / `load_state_dict()` hold everything a resumed run needs (learned values, loss
  history, GradNorm's own optimizer), so resuming continues the same weights.

Under torchrun, whatever a method learns or derives on its own (gradients of its parameters, loss
histories) is averaged across ranks so every rank keeps the same weights; the network's own gradients
are DistributedDataParallel's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from edgemtl.errors import ConfigError
from edgemtl.tasks import TaskSpec
from edgemtl.train.distributed import average_in_place
from edgemtl.train.surgery import cagrad, pcgrad


def last_shared_weight(model: nn.Module) -> Tensor:
    """The weight of the encoder's last convolution: the last layer every task's gradient flows through.

    GradNorm measures each task's gradient norm there (as the paper does), which is cheap because the
    backward pass stops at that layer instead of running through the whole encoder.
    """
    convs = [m for m in model.encoder.modules() if isinstance(m, nn.Conv2d)]
    convs = convs or [m for m in model.encoder.modules() if isinstance(m, nn.Linear)]  # a vector model's MLP
    if not convs:
        raise ConfigError(f"the encoder of {type(model).__name__} has no convolution: GradNorm needs one to measure")
    return convs[-1].weight


class TaskWeighting(nn.Module):
    """The interface every weighting method implements; the defaults suit methods that need no per-step work."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__()
        self.names = [t.name for t in tasks]

    def weighted_losses(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def current_weights(self) -> dict[str, float]:
        raise NotImplementedError

    def forward(self, losses: dict[str, Tensor]) -> Tensor:
        return sum(self.weighted_losses(losses).values())

    def shared_parameters(self, model: nn.Module) -> Tensor | list[Tensor]:
        """What `backward` is given as `shared`: the last shared layer's weight, unless a method needs more."""
        return last_shared_weight(model)

    def backward(
        self, losses: dict[str, Tensor], shared: Tensor | list[Tensor], scaler: torch.amp.GradScaler
    ) -> dict[str, Tensor]:
        """Backpropagate the weighted total into the network and this module's parameters."""
        weighted = self.weighted_losses(losses)
        scaler.scale(sum(weighted.values())).backward()
        for parameter in self.parameters():
            if parameter.grad is not None:
                average_in_place(parameter.grad)
        return weighted

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        """Called after each training epoch with its mean raw losses over every rank; most methods need nothing."""

    def _stack(self, losses: dict[str, Tensor]) -> Tensor:
        return torch.stack([losses[name] for name in self.names])  # (K,)


class FixedWeighting(TaskWeighting):
    """Σ weight_i · loss_i with the weights given in the task specs (the default)."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(tasks)
        self.register_buffer("task_weights", torch.tensor([t.weight for t in tasks], dtype=torch.float32))

    def weighted_losses(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: weight * losses[name] for name, weight in zip(self.names, self.task_weights)}

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.task_weights.tolist()))


class UncertaintyWeighting(TaskWeighting):
    """Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses", CVPR 2018.

    Each task learns a log-variance s_i and contributes exp(-s_i) · L_i + s_i: a noisy (high-loss) task
    is down-weighted, and the + s_i term keeps the weight from collapsing to zero. The same form is used
    for every task kind (no ½ factors): its optimum is s_i = log L_i, i.e. weight 1 / L_i. The s_i are
    parameters of the trainer's optimizer; the task specs' fixed weights are not used.

    A task with no label in the batch (partial labels: `task_loss` gives exactly 0, as GradNorm also
    reads it) contributes nothing: + s_i alone would push its s_i down, i.e. its weight up, on every
    batch that lacks its labels, the more so the sparser they are.
    """

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(tasks)
        self.log_variances = nn.Parameter(torch.zeros(len(tasks)))  # s_i = 0: weight 1 to start

    def weighted_losses(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        stacked = self._stack(losses)
        regularizer = torch.where(stacked > 0, self.log_variances, torch.zeros_like(self.log_variances))
        weighted = torch.exp(-self.log_variances) * stacked + regularizer
        return dict(zip(self.names, weighted.unbind()))

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, torch.exp(-self.log_variances.detach()).tolist()))


class DynamicWeightAverage(TaskWeighting):
    """Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention" (DWA), CVPR 2019.

    w_i(t) = K · softmax_i(r_i(t-1) / T) with r_i(t-1) = L_i(t-1) / L_i(t-2), the ratio of a task's mean
    training losses over the last two epochs: a task whose loss falls slower gets more weight. Weights are
    1 for the first two epochs (no ratio yet). The last two epochs' losses are buffers, so they resume.
    The task specs' fixed weights are not used.
    """

    def __init__(self, tasks: Sequence[TaskSpec], temperature: float = 2.0) -> None:
        super().__init__(tasks)
        self.temperature = temperature
        self.register_buffer("task_weights", torch.ones(len(tasks)))
        self.register_buffer("loss_history", torch.full((2, len(tasks)), math.nan))  # rows: epoch t-2, t-1

    def weighted_losses(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(zip(self.names, (self.task_weights * self._stack(losses)).unbind()))

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.task_weights.tolist()))

    def end_epoch(self, mean_losses: dict[str, float]) -> None:
        latest = torch.tensor([mean_losses[name] for name in self.names], device=self.loss_history.device)
        self.loss_history.copy_(torch.stack([self.loss_history[1], latest]))  # already the mean over ranks
        if not self.loss_history.isnan().any():
            ratios = self.loss_history[1] / self.loss_history[0].clamp_min(1e-12)
            self.task_weights.copy_(len(self.names) * torch.softmax(ratios / self.temperature, dim=0))


class GradNormWeighting(TaskWeighting):
    """Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing", ICML 2018.

    Learnable weights w_i (starting at 1, kept positive and summing to K) are moved so that each task's
    gradient norm at the last shared layer, G_i = ‖∇_W w_i·L_i‖, approaches mean(G) · r_i^α, where
    r_i = (L_i / L_i(0)) / mean_j(L_j / L_j(0)) is the task's relative inverse training rate: a task that
    trains slower, or whose gradients are smaller, is upweighted. α (default 1.5) sets how strongly.

    `backward` does the whole step: one partial backward per task to W for the norms, the network's
    backward with the weights held constant, then its own Adam step on Σ|G_i - target_i| (the target
    held constant) and the renormalization. The weights get no gradient from the network's loss, so the
    trainer's optimizer, which sees them among `parameters()`, leaves them alone. The task specs' fixed
    weights are not used.
    """

    def __init__(self, tasks: Sequence[TaskSpec], alpha: float = 1.5, learning_rate: float = 0.025) -> None:
        super().__init__(tasks)
        self.alpha = alpha
        self.task_weights = nn.Parameter(torch.ones(len(tasks)))
        self.register_buffer("initial_losses", torch.full((len(tasks),), math.nan))  # L_i(0), per task
        self.optimizer = torch.optim.Adam([self.task_weights], lr=learning_rate)

    def weighted_losses(self, losses: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(zip(self.names, (self.task_weights.detach() * self._stack(losses)).unbind()))

    def current_weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.task_weights.tolist()))

    def backward(
        self, losses: dict[str, Tensor], shared: Tensor | list[Tensor], scaler: torch.amp.GradScaler
    ) -> dict[str, Tensor]:
        stacked = self._stack(losses)  # (K,)
        scale = scaler.get_scale() if scaler.is_enabled() else 1.0  # fp16 gradients are taken scaled, then unscaled
        norms = torch.stack([self._gradient_norm(loss, shared, scale) for loss in stacked])  # ‖∇_W L_i‖, (K,)
        weighted = self.weighted_losses(losses)
        scaler.scale(sum(weighted.values())).backward()
        self._update(stacked.detach().float().clone(), norms)
        return weighted

    @staticmethod
    def _gradient_norm(loss: Tensor, shared: Tensor, scale: float) -> Tensor:
        (gradient,) = torch.autograd.grad(loss * scale, shared, retain_graph=True, allow_unused=True)
        if gradient is None:  # a task whose head does not read the shared layer
            return torch.zeros((), device=shared.device)
        return gradient.float().norm() / scale

    def _update(self, losses: Tensor, norms: Tensor) -> None:
        """One step of the weights toward balanced gradient norms, then back onto Σ w = K, w > 0.

        L_i(0) is a task's loss at its first labelled step; a step where some task has no label in the
        batch (partial labels: zero loss) leaves the weights as they are.
        """
        losses, norms = average_in_place(losses), average_in_place(norms)  # the same on every rank
        if not (torch.isfinite(losses).all() and torch.isfinite(norms).all()):
            return  # an overflowed AMP step: the grad scaler skips this step too
        self.initial_losses.copy_(torch.where(self.initial_losses.isnan() & (losses > 0), losses, self.initial_losses))
        if not (losses > 0).all() or self.initial_losses.isnan().any():
            return
        inverse_rate = losses / self.initial_losses
        grad_norms = self.task_weights * norms  # G_i = w_i · ‖∇_W L_i‖ since w_i > 0
        # The paper's target: the mean of the weighted norms G_j (not of the raw ‖∇_W L_j‖), held constant.
        targets = grad_norms.detach().mean() * (inverse_rate / inverse_rate.mean()) ** self.alpha
        (self.task_weights.grad,) = torch.autograd.grad((grad_norms - targets).abs().sum(), self.task_weights)
        self.optimizer.step()
        self.task_weights.grad = None
        with torch.no_grad():
            self.task_weights.clamp_(min=1e-3)
            self.task_weights.mul_(len(self.names) / self.task_weights.sum())

    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class GradientSurgery(FixedWeighting):
    """PCGrad and CAGrad (edgemtl.train.surgery): the task specs' fixed weights, then each task's gradient on
    every encoder parameter, combined by `combine` instead of summed.

    `backward` takes one partial backward per task to the encoder (autograd.grad, so DistributedDataParallel
    reduces nothing yet), averages the per-task gradients across ranks, combines them, runs the network's
    backward of the weighted total (the heads and decoder get their own tasks' gradients, as in LibMTL), and
    then sets the encoder's gradients to the combination. K tasks cost K + 1 backward passes.
    """

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        super().__init__(tasks)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))  # PCGrad's random orders resume with it

    def shared_parameters(self, model: nn.Module) -> list[Tensor]:
        return [p for p in model.encoder.parameters() if p.requires_grad]

    def combine(self, grads: Tensor) -> Tensor:
        """(K, P) per-task gradients → the (P,) shared update."""
        raise NotImplementedError

    def backward(
        self, losses: dict[str, Tensor], shared: Tensor | list[Tensor], scaler: torch.amp.GradScaler
    ) -> dict[str, Tensor]:
        shared = [shared] if isinstance(shared, Tensor) else list(shared)
        weighted = self.weighted_losses(losses)
        grads = torch.stack([_flat_gradient(scaler.scale(loss), shared) for loss in weighted.values()])
        update = self.combine(average_in_place(grads))
        scaler.scale(sum(weighted.values())).backward()
        for parameter, piece in zip(shared, update.split([p.numel() for p in shared])):
            parameter.grad = piece.view_as(parameter).to(parameter.dtype)
        self.steps += 1
        return weighted


def _flat_gradient(loss: Tensor, parameters: list[Tensor]) -> Tensor:
    """∇ loss over `parameters`, flattened into one vector (zeros where the loss does not reach)."""
    grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, parameters)]
    )


class PCGradWeighting(GradientSurgery):
    """Projecting conflicting gradients (Yu et al. 2020); see edgemtl.train.surgery."""

    def combine(self, grads: Tensor) -> Tensor:
        generator = torch.Generator().manual_seed(int(self.steps))
        orders = [torch.randperm(len(grads), generator=generator).tolist() for _ in range(len(grads))]
        return pcgrad(grads, orders).sum(0)


class CAGradWeighting(GradientSurgery):
    """Conflict-averse gradient descent (Liu et al. 2021), c = 0.5; see edgemtl.train.surgery."""

    def combine(self, grads: Tensor) -> Tensor:
        return cagrad(grads)


WEIGHTINGS: dict[str, type[TaskWeighting]] = {
    "fixed": FixedWeighting,
    "uncertainty": UncertaintyWeighting,
    "dwa": DynamicWeightAverage,
    "gradnorm": GradNormWeighting,
    "pcgrad": PCGradWeighting,
    "cagrad": CAGradWeighting,
}


def create_weighting(name: str, tasks: Sequence[TaskSpec]) -> TaskWeighting:
    if name not in WEIGHTINGS:
        raise ConfigError(f"unknown task weighting {name!r}: expected one of {', '.join(WEIGHTINGS)}")
    return WEIGHTINGS[name](tasks)
