"""The demo's promise, checked end to end: the default `edgemtl demo` reaches its targets on held-out scenes."""

import json

import cv2
import pytest

from edgemtl.commands.demo import OBJECT_TARGETS, OBJECTS_EPOCHS, OBJECTS_TRAINING, TARGETS, DemoConfig, run_demo


@pytest.mark.slow
def test_default_demo_reaches_its_targets(tmp_path):
    report = run_demo(tmp_path, DemoConfig(video_frames=60), progress=False, log=lambda _: None)
    facts = json.loads((tmp_path / "report.json").read_text())
    for (task, metric), target in TARGETS.items():
        assert facts["test_onnx"][task][metric] >= target, f"{task} {metric} below {target}"
    assert facts["parity"]["scene_probs"]["value"] <= 1e-4
    assert facts["parity"]["segmentation_mask"]["value"] >= 0.999
    video = cv2.VideoCapture(facts["files"]["annotated_video"])
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert len(list((tmp_path / "overlays" / "overlays").glob("*.png"))) == DemoConfig().sample_images
    assert (tmp_path / "report.md").read_text().count("(met)") == len(TARGETS)
    assert report.seconds["total"] > 0


@pytest.mark.slow
def test_the_objects_demo_trains_exports_and_reports_the_detection_targets(tmp_path):
    """Wiring only (a few scenes, one epoch): the targets themselves are the full demo's, not reached yet."""
    config = DemoConfig(epochs=1, train_size=48, val_size=16, test_size=16, video_frames=4, objects=True)
    run_demo(tmp_path, config, progress=False, log=lambda _: None)
    facts = json.loads((tmp_path / "report.json").read_text())
    assert facts["input_size"] == list(DemoConfig().objects_input_size)  # larger than the plain demo's
    assert set(facts["targets"]) == {f"{task}.{metric}" for task, metric in {**TARGETS, **OBJECT_TARGETS}}
    assert 0.0 <= facts["test_onnx"]["obstacles"]["map_50"] <= 1.0
    assert {"obstacles_boxes", "obstacles_scores"} <= set(facts["parity"])  # matched box by box (KindDef.parity)
    report = (tmp_path / "report.md").read_text()
    assert "| obstacles | map_50 |" in report and "| obstacles | map |" in report


def test_only_the_objects_demo_trains_with_its_own_rate_batch_and_flips():
    assert DemoConfig().training == {}  # the plain demo: TrainConfig's defaults, measured for issue 3
    assert DemoConfig(objects=True).training == OBJECTS_TRAINING
    given = DemoConfig(objects=True, learning_rate=1e-3, flip=0.0).training
    assert given == {**OBJECTS_TRAINING, "learning_rate": 1e-3, "flip": 0.0}
    assert DemoConfig(batch_size=8).training == {"batch_size": 8}
    assert (DemoConfig().epoch_count, DemoConfig(objects=True).epoch_count) == (12, OBJECTS_EPOCHS)
    assert DemoConfig(objects=True, epochs=3).epoch_count == 3
