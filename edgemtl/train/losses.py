"""The training side of every task kind: its loss, its prediction for metrics, and its class weights.

A task's loss is its kind's (edgemtl.kinds), by the name the task gives (`extra.loss`), or the kind's default
(`with_losses_written_out`). Class weights (`extra.class_weights`, edgemtl.kinds.imbalance) are given
numbers, or computed here once per run from the training targets' class frequencies: at most
FREQUENCY_SAMPLE targets, evenly spaced over the training set, so the pass costs a fraction of a second even
for thousands of masks. The same pass finds the rare classes that a run's start names (`rare_lines`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from edgemtl.data import ArrayDataset
from edgemtl.kinds import kind_of
from edgemtl.kinds.imbalance import CLASS_WEIGHTINGS, CLASS_WEIGHTS, RARE, loss_name, rare_handling, written_out
from edgemtl.tasks import TaskSpec

FREQUENCY_SAMPLE = 512  # training targets counted for computed class weights (all of them when fewer)


def labelled_count(task: TaskSpec, target: Tensor) -> int:
    """How many labelled items `task_loss` averages over: its mean's denominator.

    Images for classification, pixels for segmentation, label or value entries for multilabel and
    regression. A batch's `task_loss` times this count, summed over batches and divided by the summed
    count, is the mean loss over every labelled item of a dataset, whatever the unlabelled share.
    """
    return int(kind_of(task).labelled(task, target).sum())


def task_loss(task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """Mean loss of one task over the labelled part of a batch. Targets come as the dataset stores them.

    The loss the task names (its kind's default otherwise), with `class_weights` (`resolve_class_weights`)
    where given. Missing targets (partial labels, edgemtl.tasks: -1 class, 255 pixel, NaN row) take no
    part: the mean is over what is labelled (`labelled_count` items), and a batch with no label for the
    task gives a zero loss whose gradients are zeros, so a weighted sum over tasks stays a valid graph.
    """
    return kind_of(task).loss(task, output, target, class_weights)


def task_prediction(task: TaskSpec, output: Tensor) -> Tensor:
    """What the metrics compare with the target (class ids, 0/1 flags or values), as the export computes it."""
    return kind_of(task).prediction(task, output)


def _median_frequency(frequencies: np.ndarray) -> np.ndarray:
    return np.nanmedian(frequencies, axis=-1, keepdims=True) / frequencies  # over the classes present


def _inverse_sqrt(frequencies: np.ndarray) -> np.ndarray:
    return 1 / np.sqrt(frequencies)


_FROM_FREQUENCIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "median_frequency": _median_frequency,
    "inverse_sqrt": _inverse_sqrt,
}
assert tuple(_FROM_FREQUENCIES) == CLASS_WEIGHTINGS  # the names a config is checked against (no torch there)


def weights_from_counts(name: str, counts: np.ndarray) -> np.ndarray:
    """Class weights from how often each outcome occurs, along the last axis.

    Normalised so that the weight of an average item is 1 (Σ f_c · w_c = 1): the loss keeps its scale, and
    so its balance with the other tasks and the learning rate. A class that never occurs takes the largest
    weight of the others (it cannot be weighed by its frequency, and should not be silenced).
    """
    counts = np.asarray(counts, dtype=np.float64)
    frequencies = counts / np.maximum(counts.sum(-1, keepdims=True), 1)
    present = frequencies > 0
    with warnings.catch_warnings():  # a row with no class present (an unlabelled multilabel label) is all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = _FROM_FREQUENCIES[name](np.where(present, frequencies, np.nan))
        largest = np.nanmax(np.where(present, raw, np.nan), axis=-1, keepdims=True)
    raw = np.where(present, raw, np.nan_to_num(largest, nan=1.0))
    mean = np.sum(np.where(present, frequencies * raw, 0), axis=-1, keepdims=True)
    return raw / np.where(mean > 0, mean, 1)


def with_losses_written_out(
    tasks: tuple[TaskSpec, ...], saved: Mapping[str, Any] | None = None
) -> tuple[TaskSpec, ...]:
    """Each task with the loss options it trains with in its `extra` (edgemtl.kinds.imbalance.written_out), so
    config.json and the checkpoints record them. `saved`: a resumed run's recorded configuration, whose tasks'
    options a task naming none keeps (one saved without a loss trained before the defaults: its plain loss)."""
    if saved is None:
        return tuple(written_out(t, kind_of(t)) for t in tasks)
    recorded = {t["name"]: t.get("extra", {}) for t in saved.get("tasks", [])}
    return tuple(written_out(t, kind_of(t), recorded.get(t.name, {})) for t in tasks)


def as_trained(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A run's recorded configuration with its tasks' loss options written out as it trained with them (one
    recorded before defaults were written out: the plain loss), to compare with the configuration now."""
    tasks = tuple(TaskSpec.from_dict(t) for t in saved.get("tasks", []))
    return {**saved, "tasks": [t.to_dict() for t in with_losses_written_out(tasks, saved)]}


def class_counts(tasks: tuple[TaskSpec, ...], data: ArrayDataset) -> dict[str, np.ndarray]:
    """How often each outcome occurs among (at most FREQUENCY_SAMPLE of) the training targets, per task of a
    kind that takes class weights (edgemtl.kinds.base.KindDef.class_counts)."""
    sample = np.unique(np.linspace(0, len(data) - 1, min(len(data), FREQUENCY_SAMPLE)).round().astype(int))
    counts = {}
    for task in tasks:
        if CLASS_WEIGHTS in kind_of(task).options:
            counts[task.name] = kind_of(task).class_counts(task, data.targets[task.name][sample])
    return counts


def resolve_class_weights(tasks: tuple[TaskSpec, ...], counts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each task's class weights as its loss takes them (given, or computed from the training targets'
    `counts`, `class_counts`); tasks without `extra.class_weights` are absent."""
    resolved: dict[str, np.ndarray] = {}
    for task in tasks:
        setting = task.extra.get(CLASS_WEIGHTS)
        if setting is None:
            continue
        kind = kind_of(task)
        if isinstance(setting, str):
            computed = weights_from_counts(setting, counts[task.name])
            resolved[task.name] = kind.loss_weights(task, computed).astype(np.float32)
        else:
            resolved[task.name] = np.asarray(setting, dtype=np.float32)
    return resolved


def rare_classes(task: TaskSpec, counts: np.ndarray) -> list[tuple[str, float]]:
    """The classes (labels: their positives) under RARE of the task's labelled items, with their shares."""
    counts = np.asarray(counts, dtype=np.float64)
    if not counts.sum():
        return []
    positives, labelled = (counts[:, 1], counts.sum(1)) if counts.ndim == 2 else (counts, counts.sum())  # (L, 2)
    shares = positives / np.maximum(labelled, 1)
    return [(name, float(share)) for name, share in zip(task.classes, shares) if share < RARE]


def rare_lines(
    tasks: tuple[TaskSpec, ...], counts: Mapping[str, np.ndarray], class_weights: Mapping[str, np.ndarray]
) -> list[str]:
    """One line per task with rare classes: which, their shares of the training split, and what training does
    about them. `tasks` as given (before `with_losses_written_out`): whether a loss was named or defaulted."""
    lines = []
    for task in (t for t in tasks if t.name in counts):
        rare = rare_classes(task, counts[task.name])
        if not rare:
            continue
        unit = "labelled images" if kind_of(task).per_image else "pixels"
        weights = dict(zip(task.classes, class_weights.get(task.name, ())))
        found = ", ".join(
            f"{name!r} {100 * share:.2f} %" + (f" (weight {weights[name]:.3g})" if name in weights else "")
            for name, share in rare
        )
        lines.append(f"{task.name}: rare {found} of the training {unit}: {rare_handling(task, kind_of(task))}")
    return lines


def loss_lines(tasks: tuple[TaskSpec, ...], class_weights: dict[str, np.ndarray]) -> list[str]:
    """One line per task for the start of a run: its loss and class weights, as training uses them."""
    lines = []
    for task in tasks:
        line = f"{task.name}: loss {loss_name(task, kind_of(task).loss_names)}"
        if task.name in class_weights:
            numbers = ", ".join(f"{name} {w:.3g}" for name, w in zip(task.classes, class_weights[task.name]))
            setting = task.extra[CLASS_WEIGHTS]
            line += f", class weights{f' ({setting})' if isinstance(setting, str) else ''} {numbers}"
        lines.append(line)
    return lines


def as_tensors(class_weights: dict[str, np.ndarray], device: torch.device) -> dict[str, Tensor]:
    return {name: torch.from_numpy(weights).to(device) for name, weights in class_weights.items()}
