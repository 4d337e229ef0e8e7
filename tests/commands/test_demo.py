"""The demo's promise, checked end to end: the default `edgemtl demo` reaches its targets on held-out scenes."""

import json

import cv2
import pytest

from edgemtl.commands.demo import TARGETS, DemoConfig, run_demo


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
