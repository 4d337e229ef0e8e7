"""Regression: one or more numbers per image, straight from the head (no postprocessing)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.kinds.base import TaskResult
from edgemtl.kinds.imbalance import LOSS, check_loss
from edgemtl.kinds.layouts import RowTargets
from edgemtl.kinds.scores import TaskMeter

if TYPE_CHECKING:
    from torch import Tensor

    from edgemtl.tasks import TaskSpec

REGRESSION_LOSSES = ("mse", "huber")  # huber: robust to outlying targets; mse (the default) otherwise


@dataclass(frozen=True)
class RegressionResult(TaskResult):
    task: TaskSpec
    values: np.ndarray  # (K,) float32

    @property
    def by_name(self) -> dict[str, float]:
        """Each value under the name the task gives it; a task with one unnamed value calls it "value"."""
        names = self.task.classes or ("value",)
        return {n: float(v) for n, v in zip(names, self.values)}

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.by_name}

    def overlay_text(self) -> str:
        """The values, named when the task names them."""
        if self.task.classes:
            return ", ".join(f"{n} {v:.2f}" for n, v in self.by_name.items())
        return ", ".join(f"{v:.2f}" for v in self.values)


class RegressionMeter(TaskMeter):
    """predicted / target: (N, K) values; NaN targets (unlabelled) are skipped.

    Reports the MAE over every value ("mae", the headline) and, for a task of several named values, each
    value's own ("mae_<name>"): a mean hides the one value a model gets wrong.
    """

    primary = "mae"

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.absolute_error = np.zeros(task.num_outputs)
        self.count = np.zeros(task.num_outputs, dtype=np.int64)

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, self.task.num_outputs)
        target = np.asarray(target, dtype=np.float64).reshape(predicted.shape)
        known = ~np.isnan(target)
        self.absolute_error += np.where(known, np.abs(predicted - target), 0).sum(0)
        self.count += known.sum(0)

    def compute(self) -> dict[str, float]:
        total = int(self.count.sum())
        result = {"mae": float(self.absolute_error.sum() / total) if total else float("nan")}
        if len(self.task.classes) > 1:
            for name, error, count in zip(self.task.classes, self.absolute_error, self.count, strict=True):
                result[f"mae_{name}"] = float(error / count) if count else float("nan")
        return result


class Regression(RowTargets):
    value = "regression"
    outputs: ClassVar[dict[str, str]] = {"values": "(N, K) float32"}
    scored_field = "values"
    exact_outputs = frozenset()
    categorical = False
    min_classes = 0  # no names: a single unnamed value
    class_noun = "value"
    options: ClassVar[dict[str, str]] = {LOSS: "a loss"}  # "loss": one of REGRESSION_LOSSES
    loss_names = REGRESSION_LOSSES
    # "flip_negate": true when a flip negates the values (a curvature, a lateral offset), or the value names it negates
    flip_option = "flip_negate"
    meter = RegressionMeter
    higher_is_better = False
    label_problem = "unusable values"

    def num_outputs(self, task: TaskSpec) -> int:
        return max(len(task.classes), 1)

    def check_option(self, task: TaskSpec, key: str) -> None:
        check_loss(task, self.loss_names)

    def parse_row(self, task: TaskSpec, value: Any) -> np.ndarray | None:
        items = value.split(";") if isinstance(value, str) else value if isinstance(value, list) else [value]
        numbers = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                return None
            try:
                numbers.append(float(item))
            except ValueError:
                return None
        if len(numbers) != task.num_outputs or not all(math.isfinite(n) for n in numbers):
            return None
        return np.asarray(numbers, dtype=np.float32)

    def expected_label(self, task: TaskSpec) -> str:
        return f"expected {task.num_outputs} finite number(s) joined by ';', empty if unlabelled"

    def format_row(self, task: TaskSpec, row: np.ndarray) -> str:
        return ";".join(format(float(v), ".9g") for v in row)  # 9 digits: float32 reads back exactly

    def describe(self, task: TaskSpec, value: np.ndarray) -> str:
        names = task.classes or ("",) * np.size(value)
        return ", ".join(f"{n} {v:.2f}".strip() for n, v in zip(names, np.ravel(value)))

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Negate the values the task declares change sign in a mirror image (flip_negate)."""
        negate = task.extra.get("flip_negate", False)
        if isinstance(negate, bool):
            negated = np.full(task.num_outputs, negate)
        else:
            negated = np.array([name in negate for name in task.classes])
        if not np.any(negated):
            return target
        values = target.copy()
        rows = values.reshape(len(values), -1)  # a view; (N,) targets of one value included
        rows[flips] = np.where(negated, -rows[flips], rows[flips])  # NaN stays NaN
        return values

    def elementwise_loss(
        self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None
    ) -> Tensor:
        import torch.nn.functional as F

        if task.regression_loss == "huber":
            return F.huber_loss(output, target, reduction="none")
        return F.mse_loss(output, target, reduction="none")

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        return (logits,)  # the values, (N, K)

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        return RegressionResult(task, outputs["values"])
