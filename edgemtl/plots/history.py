"""Loss, metric and task-weight curves from the history a training run writes to metrics.jsonl.

The history is read defensively, entry by entry: a run folder is user data, and a damaged line must cost
its own points, never the plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgemtl.kinds import KINDS
from edgemtl.plots.figures import panel_grid, save_png
from edgemtl.plots.reading import as_number, lookup

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _epochs(history: Sequence[Any]) -> list[float]:
    return [as_number(lookup(entry, "epoch") or i + 1) for i, entry in enumerate(history)]


def _task_names(history: Sequence[Any]) -> list[str]:
    """Tasks in the order they first appear in the validation metrics or the training losses."""
    names: dict[str, None] = {}
    for entry in history:
        for key in ("val", "train_loss", "task_weights"):
            value = lookup(entry, key)
            if isinstance(value, Mapping):
                names.update(dict.fromkeys(str(name) for name in value))
    return list(names)


def _loss_series(history: Sequence[Any], task: str) -> Iterator[tuple[str, list[float]]]:
    """Every per-task loss in the history: each entry key with "loss" in its name that maps task names to a
    number (train_loss) or to numbers by kind (e.g. raw / weighted), then the validation loss."""
    keys: dict[str, None] = {}
    for entry in history:
        if isinstance(entry, Mapping):
            keys.update(dict.fromkeys(k for k, v in entry.items() if "loss" in k and isinstance(v, Mapping)))
    for key in keys:
        values = [lookup(entry, key, task) for entry in history]
        parts = sorted({str(part) for value in values if isinstance(value, Mapping) for part in value})
        yield key.replace("_", " "), [as_number(value) for value in values]  # all NaN (not drawn) when split
        for part in parts:
            yield f"{key.replace('_', ' ')} ({part})", [as_number(lookup(value, part)) for value in values]
    yield "val loss", [as_number(lookup(entry, "val", task, "loss")) for entry in history]


def _plot_lines(axes: Axes, epochs: list[float], series: Iterator[tuple[str, list[float]]], title: str) -> None:
    from matplotlib.ticker import MaxNLocator

    for label, values in series:
        if not all(math.isnan(v) for v in values):
            style = "--" if "weighted" in label else "-"  # equal to the raw loss under fixed weights: both show
            axes.plot(epochs, values, style, marker="o", markersize=3, label=label)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axes.transAxes, color="grey")


def _headline_metrics(history: Sequence[Any], task: str) -> list[str]:
    """Metric names of a task worth a curve: the numbers, not the loss, the per-class scores or matrices."""
    per_class = tuple(f"{kind.per_class_score[0]}_" for kind in KINDS.values() if kind.per_class_score)
    names: dict[str, None] = {}
    for entry in history:
        metrics = lookup(entry, "val", task)
        if isinstance(metrics, Mapping):
            names.update(
                dict.fromkeys(
                    k
                    for k, v in metrics.items()
                    if isinstance(v, int | float) and k != "loss" and not k.startswith(per_class)
                )
            )
    return list(names)


def plot_history(folder: Path, history: Sequence[Any]) -> list[Path]:
    """loss.png, metrics.png and task_weights.png from the per-epoch history entries (metrics.jsonl)."""
    folder = Path(folder)
    tasks = _task_names(history)
    if not history or not tasks:
        return []
    epochs = _epochs(history)
    written = []

    figure, panels = panel_grid(len(tasks))
    for axes, task in zip(panels, tasks):
        _plot_lines(axes, epochs, _loss_series(history, task), f"{task}: loss")
    written.append(save_png(figure, folder / "loss.png"))

    figure, panels = panel_grid(len(tasks))
    for axes, task in zip(panels, tasks):
        curves = (
            (m, [as_number(lookup(e, "val", task, m)) for e in history]) for m in _headline_metrics(history, task)
        )
        _plot_lines(axes, epochs, curves, f"{task}: validation metrics")
    written.append(save_png(figure, folder / "metrics.png"))

    figure, (weights_axes, lr_axes) = panel_grid(2, width=5.0)
    weights = ((task, [as_number(lookup(e, "task_weights", task)) for e in history]) for task in tasks)
    _plot_lines(weights_axes, epochs, weights, "task weights")
    _plot_lines(
        lr_axes, epochs, iter([("learning rate", [as_number(lookup(e, "lr")) for e in history])]), "learning rate"
    )
    if lr_axes.lines:
        lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    written.append(save_png(figure, folder / "task_weights.png"))
    return written
