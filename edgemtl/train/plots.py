"""A training run's plots, rewritten after every epoch: curves, the latest validation scores, and
predictions of the model being trained (edgemtl.plots draws them; this module adds the PyTorch side)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from edgemtl.plots import PREDICTION_SAMPLES, plot_history, plot_predictions, plot_scores
from edgemtl.plots.reading import lookup
from edgemtl.train.losses import task_prediction

if TYPE_CHECKING:
    from edgemtl.data import ArrayDataset
    from edgemtl.model import MultiTaskNet, Preprocess

log = logging.getLogger(__name__)

_failed_folders: set[Path] = set()  # folders whose plotting failure was already logged (warn once, not per epoch)


@torch.no_grad()
def model_predictions(model: MultiTaskNet, preprocess: Preprocess, images: np.ndarray) -> dict[str, np.ndarray]:
    """What the metrics score (class ids, masks, flags, values) for a few frames, from a PyTorch model."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = model(preprocess(torch.from_numpy(images).to(device)))
    model.train(was_training)
    return {task.name: task_prediction(task, outputs[task.name].float()).cpu().numpy() for task in model.tasks}


def plot_run(
    run_dir: Path,
    history: Sequence[Any],
    model: MultiTaskNet,
    preprocess: Preprocess,
    val_data: ArrayDataset,
) -> list[Path]:
    """Rewrite all of a run's plots after an epoch: curves, the latest validation scores and predictions.

    Plots are a view of training, never a reason to stop it: any failure is logged once per folder as a
    warning and the remaining plots are still drawn.
    """
    run_dir = Path(run_dir)
    latest = lookup(history[-1], "val") if history else None
    samples = val_data.subset(slice(0, PREDICTION_SAMPLES))
    steps: list[Callable[[], list[Path]]] = [
        lambda: plot_history(run_dir, history),
        lambda: plot_scores(run_dir, model.tasks, latest if isinstance(latest, Mapping) else {}),
    ]
    if hasattr(samples, "images"):  # a grid of frames with their predictions; feature rows have no picture
        steps.append(
            lambda: [
                plot_predictions(
                    run_dir / "predictions.png",
                    model.tasks,
                    samples.images,
                    samples.targets,
                    model_predictions(model, preprocess, samples.images),
                )
            ]
        )
    written = []
    for step in steps:
        try:
            written += step()
        except Exception as exc:  # a plot must never end a training run
            if run_dir not in _failed_folders:
                _failed_folders.add(run_dir)
                log.warning("plotting in %s failed (%s: %s); training goes on", run_dir, type(exc).__name__, exc)
    return written
