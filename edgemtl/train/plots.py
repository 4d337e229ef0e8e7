"""PNG plots of a run or an evaluation: loss, metric and task-weight curves, confusion matrices, per-class
scores, and validation frames with their predictions next to the ground truth.

Matplotlib's object API (a Figure on an Agg canvas), never pyplot: no global figure state and no GUI
backend, so plotting is safe inside a training loop on a headless machine. Each PNG is written under a
temporary name and renamed, so a viewer refreshing the run folder never sees half a file. Matplotlib is
imported on first use: commands that never plot (export, predict) do not pay for it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from edgemtl.kinds import KINDS, kind_of
from edgemtl.palette import class_colors
from edgemtl.runtime.overlay import render_overlay
from edgemtl.runtime.results import Prediction
from edgemtl.tasks import TaskSpec
from edgemtl.train.losses import task_prediction

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from edgemtl.data import ArrayDataset
    from edgemtl.model import MultiTaskNet, Preprocess
    from edgemtl.runtime import Engine

log = logging.getLogger(__name__)

PREDICTION_SAMPLES = 8  # frames in the prediction grid: enough to judge by eye, cheap to draw every epoch
DPI = 100
_PANEL_INCHES = 2.1  # width of one frame in the prediction grid
_LABEL_INCHES = 0.3  # left of the grid, for the row names
_ANNOTATE_MAX_CLASSES = 16  # beyond this, confusion counts would not fit in their cells
_failed_folders: set[Path] = set()  # folders whose plotting failure was already logged (warn once, not per epoch)


# ---------------------------------------------------------------------------------------------------------
# Files


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A figure on an Agg canvas; layout=None for fixed margins, which draw ~30% faster every epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    """Write beside `path`, then rename: the PNG is replaced in one step, never seen half-written."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        figure.savefig(temporary, format="png")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _panels(count: int, width: float = 4.2, height: float = 3.0) -> tuple[Figure, list[Axes]]:
    """A figure of `count` curve panels, at most three a row, with fixed margins (in inches, whatever the grid)."""
    columns = min(3, count)
    rows = math.ceil(count / columns)
    figure = _figure(width * columns, height * rows, layout=None)
    total_width, total_height = width * columns, height * rows
    grid = figure.subplots(
        rows,
        columns,
        squeeze=False,
        gridspec_kw={
            "left": 0.65 / total_width,
            "right": 1 - 0.2 / total_width,
            "bottom": 0.5 / total_height,
            "top": 1 - 0.35 / total_height,
            "wspace": 0.9 / (width - 0.85),
            "hspace": 0.85 / (height - 0.85),
        },
    )
    panels = list(grid.ravel())
    for axes in panels[count:]:
        axes.remove()
    return figure, panels[:count]


# ---------------------------------------------------------------------------------------------------------
# Curves from the history the trainer writes to metrics.jsonl


def _number(value: Any) -> float:
    """A history value as a float; NaN for anything missing or malformed, so one bad entry leaves a gap."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _get(entry: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(entry, Mapping):
            return None
        entry = entry.get(key)
    return entry


def _epochs(history: Sequence[Any]) -> list[float]:
    return [_number(_get(entry, "epoch") or i + 1) for i, entry in enumerate(history)]


def _task_names(history: Sequence[Any]) -> list[str]:
    """Tasks in the order they first appear in the validation metrics or the training losses."""
    names: dict[str, None] = {}
    for entry in history:
        for key in ("val", "train_loss", "task_weights"):
            value = _get(entry, key)
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
        values = [_get(entry, key, task) for entry in history]
        parts = sorted({str(part) for value in values if isinstance(value, Mapping) for part in value})
        yield key.replace("_", " "), [_number(value) for value in values]  # all NaN (not drawn) when split
        for part in parts:
            yield f"{key.replace('_', ' ')} ({part})", [_number(_get(value, part)) for value in values]
    yield "val loss", [_number(_get(entry, "val", task, "loss")) for entry in history]


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
        metrics = _get(entry, "val", task)
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

    figure, panels = _panels(len(tasks))
    for axes, task in zip(panels, tasks):
        _plot_lines(axes, epochs, _loss_series(history, task), f"{task}: loss")
    written.append(_save(figure, folder / "loss.png"))

    figure, panels = _panels(len(tasks))
    for axes, task in zip(panels, tasks):
        curves = ((m, [_number(_get(e, "val", task, m)) for e in history]) for m in _headline_metrics(history, task))
        _plot_lines(axes, epochs, curves, f"{task}: validation metrics")
    written.append(_save(figure, folder / "metrics.png"))

    figure, (weights_axes, lr_axes) = _panels(2, width=5.0)
    weights = ((task, [_number(_get(e, "task_weights", task)) for e in history]) for task in tasks)
    _plot_lines(weights_axes, epochs, weights, "task weights")
    _plot_lines(lr_axes, epochs, iter([("learning rate", [_number(_get(e, "lr")) for e in history])]), "learning rate")
    if lr_axes.lines:
        lr_axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    written.append(_save(figure, folder / "task_weights.png"))
    return written


# ---------------------------------------------------------------------------------------------------------
# One evaluation: confusion matrices and per-class scores


def _plot_confusion(path: Path, task: TaskSpec, confusion: np.ndarray, metrics: Mapping[str, Any]) -> Path:
    """Cells coloured by the share of each true class (row), annotated with the counts."""
    count = len(task.classes)
    side = max(3.6, 0.55 * count + 2.2)
    figure = _figure(side + 0.8, side)
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
    score = f"{headline} {_number(metrics.get(headline)):.3f}"
    axes.set_title(f"{task.name}: confusion ({score}, {int(confusion.sum())} samples)")
    if count <= _ANNOTATE_MAX_CLASSES:
        for (row, column), value in np.ndenumerate(confusion):
            color = "white" if shares[row, column] > 0.5 else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=color, fontsize=9)
    return _save(figure, path)


def _plot_per_class(path: Path, task: TaskSpec, metrics: Mapping[str, Any], per_class: tuple[str, str]) -> Path:
    """Horizontal bars, one per class; a painted kind's bars take the overlay colours so the two read together."""
    kind, (prefix, score_name) = kind_of(task), per_class
    scores = [_number(metrics.get(f"{prefix}_{name}")) for name in task.classes]
    if not kind.per_image:
        colors = class_colors(len(task.classes))[:, ::-1] / 255.0  # BGR → RGB
    else:
        colors = ["tab:blue"] * len(task.classes)
    width, height = 6.5, 0.4 * len(task.classes) + 1.0
    left = 0.25 + 0.075 * max(len(name) for name in task.classes)  # fixed margins: faster than a layout engine
    figure = _figure(width, height, layout=None)
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
    mean = _number(metrics.get(kind.primary_metric))
    axes.set_title(f"{task.name}: {score_name} per {kind.class_noun} (mean {mean:.3f})")
    return _save(figure, path)


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


# ---------------------------------------------------------------------------------------------------------
# Predictions next to the ground truth


@torch.no_grad()
def model_predictions(model: MultiTaskNet, preprocess: Preprocess, images: np.ndarray) -> dict[str, np.ndarray]:
    """What the metrics score (class ids, masks, flags, values) for a few frames, from a PyTorch model."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = model(preprocess(torch.from_numpy(images).to(device)))
    model.train(was_training)
    return {task.name: task_prediction(task, outputs[task.name].float()).cpu().numpy() for task in model.tasks}


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


def _overlay(image: np.ndarray, tasks: Sequence[TaskSpec], masks: Mapping[str, np.ndarray | None]) -> np.ndarray:
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
    segmentation = [task for task in tasks if not kind_of(task).per_image]
    height, width = images.shape[1:3]
    pixels_per_inch = width / _PANEL_INCHES
    gap = max(1, round(0.08 * pixels_per_inch))
    band = round((0.08 + 0.15 * len(per_image)) * pixels_per_inch)  # room for the titles above each row
    mosaic = np.full((2 * (band + height), count * (width + gap) - gap, 3), 255, np.uint8)
    legend_inches = 0.3 if segmentation else 0.05
    mosaic_inches = (mosaic.shape[1] / pixels_per_inch, mosaic.shape[0] / pixels_per_inch)
    figure = _figure(_LABEL_INCHES + mosaic_inches[0] + 0.05, mosaic_inches[1] + legend_inches + 0.05, layout=None)
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
            mosaic[top : top + height, left : left + width] = _overlay(images[column], segmentation, sample)
            wrong = row == 1 and any(
                _describe(task, sample[task.name]) != _describe(task, _sample(targets, task.name, column))
                for task in per_image
                if kind_of(task).categorical  # a value is off by some amount, not right or wrong
            )
            title = "\n".join(_describe(task, sample[task.name]) for task in per_image)
            color = "tab:red" if wrong else "black"
            axes.text(left + width / 2, top - 0.5, title, ha="center", va="bottom", fontsize=8, color=color)
    axes.imshow(mosaic, interpolation="nearest", aspect="auto")
    _legend(figure, segmentation)
    return _save(figure, path)


def _sample(values: Mapping[str, np.ndarray], name: str, index: int) -> np.ndarray | None:
    array = values.get(name)
    return None if array is None or index >= len(array) else array[index]


def _legend(figure: Figure, segmentation: Sequence[TaskSpec]) -> None:
    """The overlay colours of each segmentation task's classes (class 0 is left unpainted)."""
    from matplotlib.patches import Patch

    handles = []
    for task in segmentation:
        colors = class_colors(len(task.classes))[:, ::-1] / 255.0
        handles += [Patch(color=colors[i], label=f"{task.name}: {name}") for i, name in enumerate(task.classes) if i]
    if handles:
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


# ---------------------------------------------------------------------------------------------------------
# Everything for a training run, every epoch


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
    latest = _get(history[-1], "val") if history else None
    samples = val_data.subset(slice(0, PREDICTION_SAMPLES))
    steps: list[Callable[[], list[Path]]] = [
        lambda: plot_history(run_dir, history),
        lambda: plot_scores(run_dir, model.tasks, latest if isinstance(latest, Mapping) else {}),
        lambda: [
            plot_predictions(
                run_dir / "predictions.png",
                model.tasks,
                samples.images,
                samples.targets,
                model_predictions(model, preprocess, samples.images),
            )
        ],
    ]
    written = []
    for step in steps:
        try:
            written += step()
        except Exception as exc:  # a plot must never end a training run
            if run_dir not in _failed_folders:
                _failed_folders.add(run_dir)
                log.warning("plotting in %s failed (%s: %s); training goes on", run_dir, type(exc).__name__, exc)
    return written
