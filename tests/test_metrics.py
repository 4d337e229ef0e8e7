import numpy as np
import pytest

from edgemtl.metrics import (
    ClassificationMeter,
    MultilabelMeter,
    RegressionMeter,
    SegmentationMeter,
    confusion_matrix,
    iou_per_class,
    make_meter,
)
from edgemtl.tasks import TaskSpec

SEG = TaskSpec("seg", "segmentation", ("a", "b", "c"))


def test_confusion_rows_are_targets():
    matrix = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_iou_by_hand_and_absent_class_is_nan():
    predicted = np.array([[0, 0], [1, 1]])
    target = np.array([[0, 1], [1, 1]])
    ious = iou_per_class(confusion_matrix(predicted, target, 3))
    assert ious[0] == pytest.approx(1 / 2)  # tp 1, union 2
    assert ious[1] == pytest.approx(2 / 3)  # tp 2, union 3
    assert np.isnan(ious[2])


def test_segmentation_meter_accumulates_over_batches():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, (4, 8, 8))
    predicted = np.where(rng.random((4, 8, 8)) < 0.7, target, rng.integers(0, 3, (4, 8, 8)))
    batched, whole = SegmentationMeter(SEG), SegmentationMeter(SEG)
    batched.update(predicted[:1], target[:1])
    batched.update(predicted[1:], target[1:])
    whole.update(predicted, target)
    assert batched.compute() == whole.compute()
    assert 0.5 < whole.compute()["pixel_accuracy"] < 1.0
    assert set(whole.compute()) >= {"iou_a", "iou_b", "iou_c"}
    perfect = SegmentationMeter(SEG)
    perfect.update(target, target)
    assert perfect.compute()["miou"] == 1.0


def test_classification_accuracy():
    meter = ClassificationMeter(TaskSpec("c", "classification", ("x", "y")))
    meter.update(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    assert meter.compute()["accuracy"] == 0.75


def test_multilabel_f1_by_hand():
    meter = MultilabelMeter(TaskSpec("m", "multilabel", ("p", "q")))
    meter.update(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [0, 1]]))
    result = meter.compute()
    assert result["f1_p"] == pytest.approx(2 / 3) and result["f1_q"] == 1.0


def test_regression_mae():
    meter = RegressionMeter(TaskSpec("r", "regression"))
    meter.update(np.array([[1.0], [3.0]]), np.array([2.0, 3.0]))
    assert meter.compute()["mae"] == pytest.approx(0.5)


def test_regression_mae_per_named_value():
    meter = RegressionMeter(TaskSpec("pose", "regression", ("x", "y")))
    meter.update(np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([[2.0, 2.0], [np.nan, np.nan]]))
    assert meter.compute() == {"mae": pytest.approx(0.5), "mae_x": pytest.approx(1.0), "mae_y": pytest.approx(0.0)}


def test_make_meter_dispatches_on_kind():
    assert isinstance(make_meter(SEG), SegmentationMeter)
