"""Validation of a PyTorch model: per-task metrics and mean loss on a labelled dataset.

The trainer picks its best epoch by these numbers, `edgemtl eval` reports them for a checkpoint, and
export verification compares a file against them. An exported file is scored by the runtime instead
(`edgemtl.runtime.scoring`), with the same meters, so the two sets of numbers are comparable.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from edgemtl.data import ArrayDataset
from edgemtl.metrics import higher_is_better, make_meter, primary_metric
from edgemtl.model import MultiTaskNet
from edgemtl.tasks import TaskSpec
from edgemtl.train.losses import labelled_count, task_loss, task_prediction


def labelled_mean(total: float, count: float) -> float:
    """A count-weighted loss sum over its labelled count; NaN when nothing was labelled (not a fake 0)."""
    return total / count if count > 0 else math.nan


@torch.no_grad()
def validate_model(
    model: MultiTaskNet,
    data: ArrayDataset,
    preprocess: torch.nn.Module,  # Preprocess, a vector model's Standardize, or none for a frame-sized net
    batch_size: int = 64,
) -> dict[str, dict[str, float]]:
    """Per-task metrics and mean loss of a model on a dataset, in eval mode.

    The loss is the mean over the labelled items only (`labelled_count`: images, or pixels for
    segmentation), so unlabelled frames neither shrink it nor count; NaN for a task with no label at all.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tasks = model.tasks
    meters = {t.name: make_meter(t) for t in tasks}
    loss_sums = dict.fromkeys(meters, 0.0)
    labelled = dict.fromkeys(meters, 0)
    images = torch.from_numpy(data.inputs)  # frames, or a vector model's feature rows
    targets = {t.name: torch.from_numpy(data.targets[t.name]) for t in tasks}
    for index in torch.arange(len(data)).split(batch_size):
        outputs = model(preprocess(images[index].to(device)))
        for task in tasks:
            output, target = outputs[task.name].float(), targets[task.name][index].to(device)
            count = labelled_count(task, target)
            loss_sums[task.name] += float(task_loss(task, output, target)) * count
            labelled[task.name] += count
            meters[task.name].update(task_prediction(task, output).cpu().numpy(), target.cpu().numpy())
    model.train(was_training)
    return {
        name: {**meter.compute(), "loss": labelled_mean(loss_sums[name], labelled[name])}
        for name, meter in meters.items()
    }


def selection_score(metrics: dict[str, dict[str, float]], tasks: tuple[TaskSpec, ...]) -> float:
    """One number to pick the best epoch: the mean of each task's headline metric (MAE negated)."""
    scores = []
    for task in tasks:
        value = metrics[task.name][primary_metric(task)]
        scores.append(value if higher_is_better(task) else -value)
    return float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else -math.inf


def format_metrics(metrics: dict[str, dict[str, float]], tasks: tuple[TaskSpec, ...]) -> str:
    return "  ".join(f"{t.name} {primary_metric(t)} {metrics[t.name][primary_metric(t)]:.3f}" for t in tasks)
