"""A few frames with their ground truth over their predictions, drawn as the runtime draws results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgemtl.kinds import kind_of
from edgemtl.palette import class_colors
from edgemtl.plots.figures import new_figure, save_png
from edgemtl.runtime.overlay import render_overlay
from edgemtl.runtime.results import Prediction
from edgemtl.tasks import TaskSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from edgemtl.runtime import Engine

PREDICTION_SAMPLES = 8  # frames in the prediction grid: enough to judge by eye, cheap to draw every epoch
_PANEL_INCHES = 2.1  # width of one frame in the prediction grid
_LABEL_INCHES = 0.3  # left of the grid, for the row names


def engine_predictions(engine: Engine, images: np.ndarray) -> dict[str, np.ndarray]:
    """The same from an exported model (a fixed-batch one too)."""
    from edgemtl.runtime.scoring import scored_batches

    batches = [outputs for _, outputs in scored_batches(engine, images)]
    return {task.name: np.concatenate([outputs[task.name] for outputs in batches]) for task in engine.tasks}


def _describe(task: TaskSpec, value: np.ndarray | None) -> str:
    """One title line for a per-image task's value (label, labels or numbers); '?' where unlabelled."""
    if value is None or (np.issubdtype(np.asarray(value).dtype, np.floating) and np.isnan(value).all()):
        return f"{task.name}: ?"  # no target, or the missing marker of edgemtl.tasks (NaN row)
    return f"{task.name}: {kind_of(task).describe(task, value)}"


def overlay_masks(image: np.ndarray, tasks: Sequence[TaskSpec], masks: Mapping[str, np.ndarray | None]) -> np.ndarray:
    """The frame with each mask (a painted task's scored value) drawn as the runtime draws it, as RGB."""
    results = {}
    for task in tasks:
        if masks.get(task.name) is not None:
            mask, kind = np.ascontiguousarray(masks[task.name], dtype=np.uint8), kind_of(task)
            results[task.name] = kind.result(task, {kind.scored_field: mask}, mask.shape)
    return render_overlay(image, Prediction(results))[..., ::-1]


def plot_predictions(
    path: Path,
    tasks: Sequence[TaskSpec],
    images: np.ndarray,
    targets: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
) -> Path:
    """Ground truth (top row) over predictions (bottom row) for a few frames; a wrong label's title is red.

    The frames are pasted into one mosaic drawn on a single axes: 16 separate axes cost ~10x more to
    draw, and this runs every epoch.
    """
    count = min(len(images), PREDICTION_SAMPLES)
    per_image = [task for task in tasks if kind_of(task).per_image]
    segmentation = [task for task in tasks if kind_of(task).per_pixel]
    height, width = images.shape[1:3]
    pixels_per_inch = width / _PANEL_INCHES
    gap = max(1, round(0.08 * pixels_per_inch))
    band = round((0.08 + 0.15 * len(per_image)) * pixels_per_inch)  # room for the titles above each row
    mosaic = np.full((2 * (band + height), count * (width + gap) - gap, 3), 255, np.uint8)
    legend_inches = 0.3 if segmentation else 0.05
    mosaic_inches = (mosaic.shape[1] / pixels_per_inch, mosaic.shape[0] / pixels_per_inch)
    figure = new_figure(_LABEL_INCHES + mosaic_inches[0] + 0.05, mosaic_inches[1] + legend_inches + 0.05, layout=None)
    axes = figure.add_axes(
        (
            _LABEL_INCHES / figure.get_figwidth(),
            legend_inches / figure.get_figheight(),
            mosaic_inches[0] / figure.get_figwidth(),
            mosaic_inches[1] / figure.get_figheight(),
        )
    )
    axes.set_axis_off()
    for row, (name, values) in enumerate((("ground truth", targets), ("prediction", predictions))):
        top = row * (band + height) + band
        axes.text(-gap, top + height / 2, name, rotation=90, ha="right", va="center", fontsize=10)
        for column in range(count):
            left = column * (width + gap)
            sample = {task.name: _sample(values, task.name, column) for task in tasks}
            mosaic[top : top + height, left : left + width] = overlay_masks(images[column], segmentation, sample)
            wrong = row == 1 and any(
                _describe(task, sample[task.name]) != _describe(task, _sample(targets, task.name, column))
                for task in per_image
                if kind_of(task).categorical  # a value is off by some amount, not right or wrong
            )
            title = "\n".join(_describe(task, sample[task.name]) for task in per_image)
            color = "tab:red" if wrong else "black"
            axes.text(left + width / 2, top - 0.5, title, ha="center", va="bottom", fontsize=8, color=color)
    axes.imshow(mosaic, interpolation="nearest", aspect="auto")
    mask_legend(figure, segmentation)
    return save_png(figure, path)


def _sample(values: Mapping[str, np.ndarray], name: str, index: int) -> np.ndarray | None:
    array = values.get(name)
    return None if array is None or index >= len(array) else array[index]


def mask_legend(figure: Figure, segmentation: Sequence[TaskSpec]) -> None:
    """The overlay colours of each segmentation task's classes (class 0 is left unpainted)."""
    from matplotlib.patches import Patch

    handles = []
    for task in segmentation:
        colors = class_colors(len(task.classes))[:, ::-1] / 255.0
        handles += [Patch(color=colors[i], label=f"{task.name}: {name}") for i, name in enumerate(task.classes) if i]
    if handles:
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
