"""Multilabel: several labels per image, each on when its sigmoid probability exceeds its threshold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.errors import ConfigError, DataError
from edgemtl.kinds.base import LABEL_INDICES, TaskResult, check_label_indices, class_id, class_swap, expected_names
from edgemtl.kinds.imbalance import CLASS_WEIGHTS, LOSS, check_class_weights, check_loss, loss_name
from edgemtl.kinds.layouts import RowTargets
from edgemtl.kinds.scores import TaskMeter, f1_per_label

if TYPE_CHECKING:
    from torch import Tensor

    from edgemtl.tasks import TaskSpec

DEFAULT_THRESHOLD = 0.5  # a label is on when its probability exceeds this
NO_LABELS = "-"  # a CSV cell saying "none of the labels present" (an empty cell: not labelled)


@dataclass(frozen=True)
class MultilabelResult(TaskResult):
    task: TaskSpec
    flags: np.ndarray  # (L,) uint8: 1 where the probability exceeds the label's threshold (in the graph)
    probabilities: np.ndarray  # (L,) float32

    @property
    def labels(self) -> list[str]:
        """Names of the labels that are on, in the task's order."""
        return [c for c, flag in zip(self.task.classes, self.flags) if flag]

    @property
    def active(self) -> dict[str, float]:
        """The labels that are on, with their probabilities: what an application acts on."""
        return {c: float(p) for c, p, flag in zip(self.task.classes, self.probabilities, self.flags) if flag}

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "probabilities": {c: round(float(p), 4) for c, p in zip(self.task.classes, self.probabilities)},
        }

    def overlay_text(self) -> str:
        """The labels that are on with their probabilities, "-" when none is."""
        return ", ".join(f"{c} {p:.2f}" for c, p in self.active.items()) or "-"


class MultilabelMeter(TaskMeter):
    """predicted / target: (N, L) 0/1 flags; NaN targets (unlabelled) count neither way."""

    primary = "mean_f1"

    def __init__(self, task: TaskSpec) -> None:
        super().__init__(task)
        self.predicted: list[np.ndarray] = []
        self.target: list[np.ndarray] = []

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        target = np.asarray(target, dtype=np.float32)
        known = ~np.isnan(target)  # unknown entries become "neither predicted nor present": no effect on F1
        self.predicted.append(np.asarray(predicted).astype(bool) & known)
        self.target.append(np.where(known, target, 0) > 0.5)

    def compute(self) -> dict[str, float]:
        f1 = f1_per_label(np.concatenate(self.predicted), np.concatenate(self.target))
        result = {"mean_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else float("nan")}
        result.update({f"f1_{name}": float(value) for name, value in zip(self.task.classes, f1)})
        return result


class Multilabel(RowTargets):
    value = "multilabel"
    outputs: ClassVar[dict[str, str]] = {
        "probs": "(N, L) float32 sigmoid",
        "flags": "(N, L) uint8 probs > threshold",
    }
    scored_field = "flags"
    exact_outputs = frozenset({"flags"})
    categorical = True
    min_classes = 1
    class_noun = "label"
    # "threshold": one number in (0, 1), or one per label (rare labels often want a lower one)
    # loss and class_weights (positive weights): edgemtl.kinds.imbalance
    options: ClassVar[dict[str, str]] = {
        "threshold": "a threshold",
        LABEL_INDICES: "label indices",
        LOSS: "a loss",
        CLASS_WEIGHTS: "class weights",
    }
    loss_names = ("bce", "focal")
    flip_option = "flip_pairs"
    meter = MultilabelMeter
    per_class_score = ("f1", "F1")
    label_problem = "unknown label names"
    steady = "each"

    def check_option(self, task: TaskSpec, key: str) -> None:
        if key == LABEL_INDICES:
            check_label_indices(task)
            return
        if key == LOSS:
            check_loss(task, self.loss_names)
            return
        if key == CLASS_WEIGHTS:
            check_class_weights(task, self.count_of(len(task.classes)), "label (the weight of its positives)")
            return
        value = task.extra[key]
        per_label = isinstance(value, (list, tuple))
        if per_label and len(value) != len(task.classes):
            raise ConfigError(
                f"task {task.name!r} has {len(value)} thresholds for {len(task.classes)} labels: expected "
                f"one number, or one per label ({', '.join(task.classes)})"
            )
        for number in value if per_label else [value]:
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 < number < 1:
                raise ConfigError(
                    f"task {task.name!r} has threshold {number!r}: expected a number between 0 and 1, exclusive"
                )

    def spec_lines(self, task: TaskSpec) -> list[str]:
        return [f"thresholds: {', '.join(f'{t:g}' for t in task.thresholds)}"]  # the flags depend on them

    def check_values(self, task: TaskSpec, values: np.ndarray) -> None:
        if not np.isin(values, (0, 1)).all():
            raise DataError(f"dataset target {task.name!r} holds values other than 0 and 1: expected 0/1 flags")

    def parse_row(self, task: TaskSpec, value: Any) -> np.ndarray | None:
        if isinstance(value, str):
            value = [] if value.strip() == NO_LABELS else [name for name in value.split(";") if name.strip()]
        if not isinstance(value, list):
            return None
        ids = [class_id(name, task) for name in value]
        if None in ids:
            return None
        flags = np.zeros(len(task.classes), dtype=np.float32)
        flags[ids] = 1
        return flags

    def expected_label(self, task: TaskSpec) -> str:
        return f"expected names of {expected_names(task)} joined by ';' ('{NO_LABELS}': none), empty if unlabelled"

    def format_row(self, task: TaskSpec, row: np.ndarray) -> str:
        return ";".join(name for name, flag in zip(task.classes, row, strict=True) if flag) or NO_LABELS

    def present_classes(self, task: TaskSpec, target: np.ndarray) -> list[int]:
        return [int(i) for i in np.flatnonzero(target > 0.5)]

    def describe(self, task: TaskSpec, value: np.ndarray) -> str:
        return ", ".join(name for name, flag in zip(task.classes, np.ravel(value)) if flag > 0.5) or "none"

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Swap the flags' columns of the flip pairs; NaN rows stay NaN."""
        if not task.extra.get("flip_pairs"):
            return target
        flags = target.copy()
        flags[flips] = flags[flips][:, class_swap(task, len(task.classes))]
        return flags

    def elementwise_loss(
        self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None
    ) -> Tensor:
        """The named loss (BCE by default); `class_weights` (L,): the weight of each label's positives."""
        from edgemtl.kinds.losses import BINARY_LOSSES

        return BINARY_LOSSES[loss_name(task, self.loss_names)](output, target, class_weights)

    def class_counts(self, task: TaskSpec, targets: np.ndarray) -> np.ndarray:
        """(L, 2): each label's labelled negatives and positives, two outcomes weighed against each other."""
        rows = np.asarray(targets, dtype=np.float32).reshape(-1, len(task.classes))
        known = ~np.isnan(rows)
        positives = ((rows > 0.5) & known).sum(0)
        return np.stack([known.sum(0) - positives, positives], axis=1)

    def loss_weights(self, task: TaskSpec, outcome_weights: np.ndarray) -> np.ndarray:
        """A positive's weight relative to a negative's: BCE's pos_weight (neg/pos for median frequency)."""
        return outcome_weights[:, 1] / outcome_weights[:, 0]

    def constants(self, task: TaskSpec) -> dict[str, tuple[float, ...]]:
        return {"thresholds": task.thresholds}  # per label, from the spec

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        import torch

        probs = torch.sigmoid(logits)  # (N, L)
        return probs, (probs > constants["thresholds"]).to(torch.uint8)

    def decide(self, task: TaskSpec, probabilities: np.ndarray) -> np.ndarray:
        return (np.asarray(probabilities) > np.asarray(task.thresholds, np.float32)).astype(np.uint8)

    def steadied(self, result: TaskResult, probabilities: np.ndarray, decision: np.ndarray) -> TaskResult:
        return MultilabelResult(result.task, decision.astype(np.uint8), probabilities.astype(np.float32))

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        return MultilabelResult(task, outputs["flags"], outputs["probs"])
