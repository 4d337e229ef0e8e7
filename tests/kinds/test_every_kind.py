"""Every task kind end to end: synthetic targets → training → ONNX export → Engine results → overlay.

Plus the kind-specific options a TaskSpec carries: per-label multilabel thresholds and the regression loss.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from edgemtl.data import make_dataset
from edgemtl.data.synthetic import CURVATURE_TASK, OBJECTS_TASK, PROXIMITY_TASK
from edgemtl.deploy import ExportWrapper, export_onnx
from edgemtl.errors import ConfigError
from edgemtl.runtime import (
    ClassificationResult,
    Engine,
    MultilabelResult,
    Prediction,
    RegressionResult,
    SegmentationResult,
    render_overlay,
)
from edgemtl.runtime.overlay import _text_lines
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec, tasks_from_json, tasks_to_json
from edgemtl.train import TrainConfig, load_checkpoint
from edgemtl.train.losses import task_loss, task_prediction
from tests.helpers import train_split

THRESHOLDS = (0.5, 0.4, 0.6)
OBJECTS = replace(OBJECTS_TASK, extra={"threshold": list(THRESHOLDS)})
PROXIMITY = replace(PROXIMITY_TASK, extra={"loss": "huber"})
TASKS = (*NAVIGATION_TASKS, OBJECTS, CURVATURE_TASK, PROXIMITY)  # every kind; regression twice (mse, huber)
SIZE = (32, 32)


@pytest.fixture(scope="module")
def all_kinds(tmp_path_factory) -> tuple[Path, dict[str, dict[str, float]]]:
    """A nano model with every kind, trained one epoch on 64 scenes and exported with verification."""
    data = make_dataset(64, SIZE, seed=0, tasks=TASKS)
    config = TrainConfig(preset="nano", input_size=SIZE, epochs=1, batch_size=16, seed=0, device="cpu")
    run = train_split(config, TASKS, data, (56, 64), tmp_path_factory.mktemp("kinds_run"))
    path = tmp_path_factory.mktemp("kinds_export") / "kinds.onnx"
    export_onnx(load_checkpoint(run.best_checkpoint), path, verify_data=data.subset(slice(56, 64)))
    return path, run.best_metrics


def test_every_kind_trains_exports_and_runs(all_kinds):
    path, metrics = all_kinds
    assert set(metrics) == {t.name for t in TASKS}
    assert 0 <= metrics["objects"]["mean_f1"] <= 1 or math.isnan(metrics["objects"]["mean_f1"])
    assert math.isfinite(metrics["curvature"]["mae"]) and math.isfinite(metrics["proximity"]["mae"])

    engine = Engine(path, device="cpu")
    assert engine.tasks == TASKS
    assert engine.tasks[2].thresholds == THRESHOLDS and engine.tasks[4].regression_loss == "huber"
    assert any("thresholds: 0.5, 0.4, 0.6" in line for line in engine.metadata.describe())

    frame = make_dataset(1, (48, 80), seed=9).images[0]  # not the model's size
    prediction = engine.predict(frame)
    scene, segmentation = prediction["scene"], prediction["segmentation"]
    assert isinstance(scene, ClassificationResult) and scene.label in scene.task.classes
    assert scene.probabilities.shape == (4,) and abs(float(scene.probabilities.sum()) - 1) < 1e-4
    assert isinstance(segmentation, SegmentationResult)
    assert segmentation.mask.shape == (48, 80) and segmentation.mask.dtype == np.uint8 and segmentation.mask.max() < 4
    objects = prediction["objects"]
    assert isinstance(objects, MultilabelResult)
    assert objects.probabilities.shape == (3,) and np.all((objects.probabilities >= 0) & (objects.probabilities <= 1))
    assert np.array_equal(objects.flags, objects.probabilities > np.float32(THRESHOLDS))
    assert list(objects.active) == objects.labels and set(objects.labels) <= set(OBJECTS.classes)
    for name in ("curvature", "proximity"):
        result = prediction[name]
        assert isinstance(result, RegressionResult)
        assert result.values.shape == (1,) and np.isfinite(result.values).all()
        assert result.by_name == {"value": float(result.values[0])}
    assert json.loads(json.dumps(prediction.to_dict()))["objects"]["labels"] == objects.labels

    batch = engine.run(make_dataset(8, SIZE, seed=5).images)  # the thresholds are in the graph, per label
    assert batch["objects_flags"].shape == (8, 3) and batch["objects_flags"].dtype == np.uint8
    assert np.array_equal(batch["objects_flags"], batch["objects_probs"] > np.float32(THRESHOLDS))
    assert batch["curvature_values"].shape == (8, 1) and batch["curvature_values"].dtype == np.float32

    overlay = render_overlay(frame, prediction)
    assert overlay.shape == frame.shape and overlay.dtype == np.uint8 and not np.array_equal(overlay, frame)
    lines = _text_lines(prediction)
    assert [line.split(":")[0] for line in lines] == ["scene", "objects", "curvature", "proximity"]


def test_overlay_text_names_active_labels_and_values():
    named = TaskSpec("pose", TaskKind.REGRESSION, ("yaw", "pitch"))
    prediction = Prediction(
        {
            "objects": MultilabelResult(OBJECTS, np.array([1, 0, 1], np.uint8), np.array([0.9, 0.45, 0.7], np.float32)),
            "none": MultilabelResult(OBJECTS, np.zeros(3, np.uint8), np.full(3, 0.1, np.float32)),
            "curvature": RegressionResult(CURVATURE_TASK, np.array([-0.42], np.float32)),
            "pose": RegressionResult(named, np.array([0.1, -2.0], np.float32)),
        }
    )
    assert _text_lines(prediction) == [
        "objects: box 0.90, cone 0.70",
        "none: -",
        "curvature: -0.42",
        "pose: yaw 0.10, pitch -2.00",
    ]
    assert prediction["pose"].by_name == pytest.approx({"yaw": 0.1, "pitch": -2.0})


class _ConstantNet(nn.Module):
    """Stands in for a MultiTaskNet: every label at probability 0.45, to sit between the thresholds."""

    tasks = (OBJECTS,)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"objects": torch.logit(torch.full((images.shape[0], 3), 0.45))}


def test_per_label_thresholds_decide_the_flags_in_training_and_export():
    logits = torch.logit(torch.full((2, 3), 0.45))
    assert task_prediction(OBJECTS, logits).tolist() == [[0, 1, 0]] * 2
    assert task_prediction(OBJECTS_TASK, logits).tolist() == [[0, 0, 0]] * 2  # the default: 0.5 for every label
    wrapper = ExportWrapper(_ConstantNet(), (0, 0, 0), (1, 1, 1)).eval()
    _, flags = wrapper(torch.zeros((2, 8, 8, 3), dtype=torch.uint8))
    assert flags.dtype == torch.uint8 and flags.tolist() == [[0, 1, 0]] * 2


def test_huber_loss_is_gentler_on_outliers_than_mse():
    output, target = torch.zeros(4, 1), torch.tensor([[0.0], [0.0], [0.0], [10.0]])
    assert task_loss(CURVATURE_TASK, output, target).item() == pytest.approx(25.0)  # mse: 100 / 4
    assert task_loss(PROXIMITY, output, target).item() == pytest.approx(9.5 / 4)  # huber, delta 1: 10 - 0.5


def test_thresholds_and_loss_survive_the_json_round_trip():
    assert [t.extra for t in tasks_from_json(tasks_to_json(TASKS))] == [t.extra for t in TASKS]
    assert replace(OBJECTS_TASK, extra={"threshold": 0.3}).thresholds == (0.3, 0.3, 0.3)


@pytest.mark.parametrize(
    ("kind", "extra", "fragment"),
    [
        ("multilabel", {"threshold": 1.0}, "threshold 1.0: expected a number between 0 and 1"),
        ("multilabel", {"threshold": 0}, "threshold 0: expected a number between 0 and 1"),
        ("multilabel", {"threshold": "high"}, "threshold 'high'"),
        ("multilabel", {"threshold": [0.5, float("nan"), 0.5]}, "threshold nan"),
        ("multilabel", {"threshold": [0.5, 0.5]}, "2 thresholds for 3 labels: expected one number, or one per label"),
        ("classification", {"threshold": 0.5}, "(classification) has a threshold: only multilabel tasks"),
        ("regression", {"loss": "mae"}, "loss 'mae': expected one of mse, huber"),
        ("multilabel", {"loss": "huber"}, "(multilabel) cannot take loss 'huber', a loss of regression tasks"),
        ("regression", {"class_weights": [1.0]}, "(regression) has class weights: only classification, multilabel"),
    ],
)
def test_bad_threshold_or_loss_is_a_one_line_config_error(kind, extra, fragment):
    with pytest.raises(ConfigError) as error:
        TaskSpec("t", kind, ("a", "b", "c"), extra=extra)
    assert fragment in str(error.value) and "\n" not in str(error.value)
