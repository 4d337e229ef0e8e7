"""The demo's promise, checked end to end: the default `edgemtl demo` reaches its targets on held-out scenes."""

import json

import cv2
import pytest

from edgemtl.commands.demo import OBJECT_TARGETS, OBJECTS, PLAIN, TARGETS, DemoConfig, run_demo


@pytest.mark.slow(minutes=7)  # on 2 quiet cores: started first (tests/conftest.py)
def test_default_demo_trains_scene_segmentation_and_boxes_and_reaches_every_target(tmp_path, join_idle_cores):
    """Under xdist the training takes more threads as other workers finish, so its floats are summed in an order
    that depends on when they do, and a run is not repeated bit for bit: the targets hold with room (mAP@0.5
    0.931 against 0.90, where two identical runs have differed by 0.016; docs/training.md)."""
    config = DemoConfig(video_frames=60)
    report = run_demo(tmp_path, config, progress=False, log=join_idle_cores)  # each epoch's line: more threads?
    facts = json.loads((tmp_path / "report.json").read_text())
    assert set(config.targets) == {*TARGETS, *OBJECT_TARGETS}  # the default trains all three tasks
    for (task, metric), target in config.targets.items():
        assert facts["test_onnx"][task][metric] >= target, f"{task} {metric} below {target}"
    assert facts["parity"]["scene_probs"]["value"] <= 1e-4
    assert facts["parity"]["segmentation_mask"]["value"] >= 0.999
    assert facts["parity"]["obstacles_boxes"]["ok"] and facts["parity"]["obstacles_scores"]["ok"]
    video = cv2.VideoCapture(facts["files"]["annotated_video"])
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert len(list((tmp_path / "overlays" / "overlays").glob("*.png"))) == config.sample_images
    assert (tmp_path / "report.md").read_text().count("(met)") == len(config.targets)
    assert report.seconds["total"] > 0


@pytest.mark.slow
def test_the_demo_without_objects_trains_exports_and_reports_scene_and_segmentation(tmp_path):
    """Wiring only (a few scenes, one epoch): `--no-objects` keeps the earlier, faster demo."""
    config = DemoConfig(epochs=1, train_size=48, val_size=16, test_size=16, video_frames=4, objects=False)
    run_demo(tmp_path, config, progress=False, log=lambda _: None)
    facts = json.loads((tmp_path / "report.json").read_text())
    assert facts["input_size"] == list(PLAIN.input_size)  # smaller than the default's
    assert set(facts["targets"]) == {f"{task}.{metric}" for task, metric in TARGETS}
    assert "obstacles" not in facts["test_onnx"] and not any(name.startswith("obstacles") for name in facts["parity"])
    assert "| obstacles |" not in (tmp_path / "report.md").read_text()


def test_the_demo_trains_by_its_recipe_and_what_is_given_replaces_the_recipes():
    assert DemoConfig().recipe == OBJECTS and DemoConfig(objects=False).recipe == PLAIN
    given = DemoConfig(learning_rate=1e-3, flip=0.0, epochs=3).recipe
    assert (given.learning_rate, given.flip, given.epochs) == (1e-3, 0.0, 3)
    assert (given.batch_size, given.input_size) == (OBJECTS.batch_size, OBJECTS.input_size)
    assert DemoConfig(objects=False, batch_size=8).recipe.batch_size == 8
    assert PLAIN.learning_rate is None and PLAIN.flip == 0.0  # the plain demo: TrainConfig's, measured for issue 3
