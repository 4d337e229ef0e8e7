"""One evaluation drawn: a confusion matrix per classification task, per-class scores per segmentation and
multilabel task."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.kinds import kind_of
from edgemtl.palette import class_colors
from edgemtl.plots.figures import new_figure, save_png
from edgemtl.plots.reading import as_number
from edgemtl.tasks import TaskSpec

_ANNOTATE_MAX_CLASSES = 16  # beyond this, confusion counts would not fit in their cells


def _plot_confusion(path: Path, task: TaskSpec, confusion: np.ndarray, metrics: Mapping[str, Any]) -> Path:
    """Cells coloured by the share of each true class (row), annotated with the counts."""
    count = len(task.classes)
    side = max(3.6, 0.55 * count + 2.2)
    figure = new_figure(side + 0.8, side)
    axes = figure.add_subplot()
    totals = confusion.sum(1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class", shrink=0.8)
    axes.set_xticks(range(count), task.classes, rotation=45 if count > 4 else 0, ha="right" if count > 4 else "center")
    axes.set_yticks(range(count), task.classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    headline = kind_of(task).primary_metric  # accuracy
    score = f"{headline} {as_number(metrics.get(headline)):.3f}"
    axes.set_title(f"{task.name}: confusion ({score}, {int(confusion.sum())} samples)")
    if count <= _ANNOTATE_MAX_CLASSES:
        for (row, column), value in np.ndenumerate(confusion):
            color = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=color, fontsize=9)
    return save_png(figure, path)


def _plot_per_class(path: Path, task: TaskSpec, metrics: Mapping[str, Any], per_class: tuple[str, str]) -> Path:
    """Horizontal bars, one per class; a painted kind's bars take the overlay colours so the two read together."""
    kind, (prefix, score_name) = kind_of(task), per_class
    scores = [as_number(metrics.get(f"{prefix}_{name}")) for name in task.classes]
    colors = class_colors(len(task.classes))[:, ::-1] / 255.0 if kind.per_pixel else ["tab:blue"] * len(task.classes)
    width, height = 6.5, 0.4 * len(task.classes) + 1.0
    left = 0.25 + 0.075 * max(len(name) for name in task.classes)  # fixed margins: faster than a layout engine
    figure = new_figure(width, height, layout=None)
    axes = figure.add_axes((left / width, 0.5 / height, 1 - (left + 0.2) / width, 1 - 0.85 / height))
    positions = np.arange(len(task.classes))
    axes.barh(positions, np.nan_to_num(scores), color=colors, edgecolor="black", linewidth=0.6)
    for position, score in zip(positions, scores):
        text, at = ("n/a", 0.0) if math.isnan(score) else (f"{score:.3f}", score)
        axes.text(at + 0.01, position, text, va="center", fontsize=9)
    axes.set_yticks(positions, task.classes)
    axes.invert_yaxis()  # class 0 on top, as in the task's class list
    axes.set_xlim(0, 1.1)  # room for the value right of a full bar
    axes.set_xticks(np.linspace(0, 1, 6))
    axes.set_xlabel(score_name)
    axes.grid(axis="x", alpha=0.3)
    mean = as_number(metrics.get(kind.primary_metric))
    axes.set_title(f"{task.name}: {score_name} per {kind.class_noun} (mean {mean:.3f})")
    return save_png(figure, path)


def plot_scores(folder: Path, tasks: Sequence[TaskSpec], metrics: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """confusion_<task>.png per task whose metrics hold a confusion matrix (classification) and <iou|f1>_<task>.png
    per task scored class by class (segmentation, multilabel), from one evaluation's metrics (as `validate_model`
    or `score_engine` return them)."""
    written = []
    for task in tasks:
        scores = metrics.get(task.name)
        if not isinstance(scores, Mapping):
            continue
        per_class = kind_of(task).per_class_score
        if scores.get("confusion") is not None:
            confusion = np.asarray(scores["confusion"], dtype=np.int64)
            path = Path(folder) / f"confusion_{task.name}.png"
            written.append(_plot_confusion(path, task, confusion, scores))
        elif per_class:
            path = Path(folder) / f"{per_class[0]}_{task.name}.png"
            written.append(_plot_per_class(path, task, scores, per_class))
    return written
