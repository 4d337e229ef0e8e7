"""Plots: the PNGs a run and an evaluation write, drawn from whatever history they are given, never fatal."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from edgemtl.data import ArrayDataset
from edgemtl.metrics import make_meter
from edgemtl.plots import plot_history, plot_predictions, plot_scores
from edgemtl.tasks import IGNORE_PIXEL, MISSING_CLASS, NAVIGATION_TASKS, TaskKind, TaskSpec
from edgemtl.train import plots
from edgemtl.train.plots import plot_run
from tests.helpers import assert_png, train_split

SCENE, SEGMENTATION = NAVIGATION_TASKS
OBJECTS = TaskSpec("objects", TaskKind.MULTILABEL, ("cone", "box", "rock"))
DISTANCE = TaskSpec("distance", TaskKind.REGRESSION, ("metres",))
ALL_KINDS = (SCENE, SEGMENTATION, OBJECTS, DISTANCE)


def history_entry(epoch: int) -> dict:
    return {
        "epoch": epoch,
        "lr": 1e-3 / epoch,
        "train_loss": {"scene": 1.0 / epoch, "segmentation": 0.8 / epoch},
        "weighted_loss": {"scene": 0.5 / epoch, "segmentation": 0.8 / epoch},
        "task_weights": {"scene": 0.5, "segmentation": 1.0},
        "val": {
            "scene": {"accuracy": 0.5 + 0.1 * epoch, "confusion": [[3, 1], [0, 4]], "loss": 0.9 / epoch},
            "segmentation": {"miou": 0.3 * epoch, "pixel_accuracy": 0.7, "iou_path": 0.4, "loss": 0.7 / epoch},
        },
    }


def test_history_plots_are_written(tmp_path):
    written = plot_history(tmp_path, [history_entry(1), history_entry(2), history_entry(3)])
    assert sorted(p.name for p in written) == ["loss.png", "metrics.png", "task_weights.png"]
    for path in written:
        width, height = assert_png(path)
        assert width > 300 and height > 200
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


@pytest.mark.parametrize(
    "broken",
    [
        None,
        "not a dict",
        {},
        {"epoch": "two", "lr": None, "train_loss": [1, 2], "val": {"scene": "accuracy 0.5"}},
        {"epoch": 2, "val": {"scene": {"accuracy": float("nan")}}, "task_weights": {"scene": "heavy"}},
        {"epoch": 2, "train_loss": {"scene": {"raw": 1.0, "weighted": "x"}}},
    ],
)
def test_a_broken_history_entry_leaves_a_gap_not_an_error(tmp_path, broken):
    written = plot_history(tmp_path, [history_entry(1), broken, history_entry(3)])
    assert {p.name for p in written} == {"loss.png", "metrics.png", "task_weights.png"}
    for path in written:
        assert_png(path)


def test_an_empty_history_draws_nothing(tmp_path):
    assert plot_history(tmp_path, []) == []
    assert plot_history(tmp_path, [None, {"lr": 0.1}]) == []


def test_scores_of_every_kind(tmp_path):
    metrics = {}
    rng = np.random.default_rng(0)
    for task, predicted, target in (
        (SCENE, rng.integers(0, 4, 50), rng.integers(0, 4, 50)),
        (SEGMENTATION, rng.integers(0, 4, (3, 8, 8)), rng.integers(0, 4, (3, 8, 8))),
        (OBJECTS, rng.integers(0, 2, (20, 3)), rng.integers(0, 2, (20, 3)).astype(np.float32)),
        (DISTANCE, rng.random((20, 1)), rng.random((20, 1)).astype(np.float32)),
    ):
        meter = make_meter(task)
        meter.update(predicted, target)
        metrics[task.name] = meter.compute()
    assert np.asarray(metrics["scene"]["confusion"]).sum() == 50, "classification reports its confusion matrix"
    written = plot_scores(tmp_path, ALL_KINDS, metrics)
    assert sorted(p.name for p in written) == ["confusion_scene.png", "f1_objects.png", "iou_segmentation.png"]
    for path in written:
        assert_png(path)


def test_predictions_grid_of_every_kind_with_unlabelled_samples(tmp_path):
    rng = np.random.default_rng(1)
    count, size = 10, (24, 32)
    images = rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)
    targets = {
        "scene": rng.integers(0, 4, count),
        "segmentation": rng.integers(0, 4, (count, *size)).astype(np.uint8),
        "objects": rng.integers(0, 2, (count, 3)).astype(np.float32),
        "distance": rng.random((count, 1)).astype(np.float32),
    }
    targets["scene"][0] = MISSING_CLASS
    targets["segmentation"][1] = IGNORE_PIXEL
    targets["objects"][2] = np.nan
    targets["distance"][3] = np.nan
    predictions = {name: value.copy() for name, value in targets.items()}
    predictions["scene"] = rng.integers(0, 4, count)
    path = plot_predictions(tmp_path / "predictions.png", ALL_KINDS, images, targets, predictions)
    width, height = assert_png(path)
    assert width > height, "at most eight frames side by side, truth above prediction"


def test_predictions_grid_without_targets_for_a_task(tmp_path):
    images = np.zeros((2, 16, 16, 3), np.uint8)
    predictions = {"scene": np.array([0, 1]), "segmentation": np.zeros((2, 16, 16), np.uint8)}
    assert_png(plot_predictions(tmp_path / "p.png", NAVIGATION_TASKS, images, {}, predictions))


def test_a_training_run_writes_its_plots(trained_run):
    for name in ("loss", "metrics", "task_weights", "confusion_scene", "iou_segmentation", "predictions"):
        assert_png(trained_run.run_dir / f"{name}.png")


def test_plots_can_be_turned_off(tmp_path, tiny_data):
    from edgemtl.train import TrainConfig

    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=8, device="cpu", plots=False)
    train_split(config, NAVIGATION_TASKS, tiny_data, (8, 12), tmp_path)
    assert (tmp_path / "last.pt").is_file()
    assert not list(tmp_path.glob("*.png"))


def test_a_failing_plot_warns_once_and_the_others_are_still_drawn(tmp_path, trained_run, monkeypatch, caplog):
    from edgemtl.model import Preprocess
    from edgemtl.train import load_checkpoint

    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    model, preprocess = checkpoint.build_model(), Preprocess(checkpoint.mean, checkpoint.std)
    data = ArrayDataset(np.zeros((4, 32, 32, 3), np.uint8), {})  # no targets: the grid shows '?'

    def broken(*args, **kwargs):
        raise RuntimeError("no space for pixels")

    monkeypatch.setattr(plots, "plot_scores", broken)
    with caplog.at_level(logging.WARNING, logger=plots.__name__):
        for _ in range(2):
            written = plot_run(tmp_path, trained_run.history, model, preprocess, data)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no space for pixels" in warnings[0].getMessage()
    assert {p.name for p in written} == {"loss.png", "metrics.png", "task_weights.png", "predictions.png"}
    assert model.training is False, "the model's mode is left as it was"


def test_a_nan_metric_is_drawn_as_a_gap(tmp_path):
    entries = [history_entry(1), history_entry(2)]
    entries[1]["val"]["segmentation"]["miou"] = math.nan
    for path in plot_history(tmp_path, entries):
        assert_png(path)
