"""The training side of every task kind: its loss, its prediction for metrics, and its class weights.

A task's loss is its kind's (edgemtl.kinds), by the name the task gives (`extra.loss`). Class weights
(`extra.class_weights`, edgemtl.kinds.imbalance) are given numbers, or computed here once per run from
the training targets' class frequencies: at most FREQUENCY_SAMPLE targets, evenly spaced over the training
set, so the pass costs a fraction of a second even for thousands of masks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from edgemtl.data import ArrayDataset
from edgemtl.kinds import kind_of
from edgemtl.kinds.imbalance import CLASS_WEIGHTINGS, CLASS_WEIGHTS, loss_name
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


def resolve_class_weights(tasks: tuple[TaskSpec, ...], data: ArrayDataset) -> dict[str, np.ndarray]:
    """Each task's class weights as its loss takes them (given, or computed from `data`'s targets); tasks
    without `extra.class_weights` are absent."""
    resolved: dict[str, np.ndarray] = {}
    sample = np.unique(np.linspace(0, len(data) - 1, min(len(data), FREQUENCY_SAMPLE)).round().astype(int))
    for task in tasks:
        setting = task.extra.get(CLASS_WEIGHTS)
        if setting is None:
            continue
        kind = kind_of(task)
        if isinstance(setting, str):
            counts = kind.class_counts(task, data.targets[task.name][sample])
            resolved[task.name] = kind.loss_weights(task, weights_from_counts(setting, counts)).astype(np.float32)
        else:
            resolved[task.name] = np.asarray(setting, dtype=np.float32)
    return resolved


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
