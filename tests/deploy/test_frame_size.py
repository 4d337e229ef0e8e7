"""Frame-sized exports: raw camera frames in, the resize, the network and masks at the frame's size inside
the graph, optionally the blended overlay; understood by the Engine, the pipeline, `info` and Triton."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import onnx
import pytest

from edgemtl.data.synthetic import make_dataset
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.deploy.triton import triton_config
from edgemtl.errors import ConfigError, FrameError, ModelFileError
from edgemtl.runtime import Engine, open_output, open_source, run_pipeline
from edgemtl.runtime.metadata import DYNAMIC
from edgemtl.runtime.overlay import Overlay
from edgemtl.runtime.providers import TENSORRT_PROVIDER, check_static_shapes
from edgemtl.runtime.results import Prediction
from edgemtl.train import load_checkpoint
from tests.helpers import assert_one_line, doctor_metadata, invoke, write_video

FRAME = (48, 80)  # a camera's aspect, unlike the model's square 32×32


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return load_checkpoint(trained_run.best_checkpoint)


@pytest.fixture(scope="module")
def scenes():
    """Held-out scenes rendered at the frame's size: images and full-resolution masks."""
    return make_dataset(8, FRAME, seed=7)


@pytest.fixture(scope="module")
def fixed_file(checkpoint, scenes, tmp_path_factory):
    path = tmp_path_factory.mktemp("frame") / "frame.onnx"
    result = export_onnx(checkpoint, path, ExportOptions(frame_size=FRAME, overlay=True), verify_data=scenes)
    assert result.parity.passed and result.verification is not None
    return path


@pytest.fixture(scope="module")
def dynamic_file(frame_sized_model):
    return frame_sized_model  # exported with frame_size=DYNAMIC


def test_the_graph_takes_camera_frames_and_says_so(fixed_file):
    proto = onnx.load(str(fixed_file))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [*FRAME, 3]
    engine = Engine(fixed_file, device="cpu")
    assert engine.metadata.frame_size == FRAME and engine.metadata.input_size == (32, 32)
    assert engine.metadata.overlay == {"output": "overlay", "task": "segmentation", "alpha": 0.5}
    described = "\n".join(engine.metadata.describe())
    assert "camera frames of 48x80 in" in described and "network's 32x32" in described
    result = invoke("info", fixed_file)
    assert result.exit_code == 0 and "camera frames of 48x80 in" in result.output, result.output


def test_masks_and_the_overlay_come_back_at_the_frame_size(fixed_file, scenes):
    engine = Engine(fixed_file, device="cpu")
    frame = scenes.images[0]
    prediction = engine.predict(frame)
    assert prediction["segmentation"].mask.shape == FRAME
    assert prediction.overlay.shape == (*FRAME, 3) and prediction.overlay.dtype == np.uint8
    # The graph blends as the host's Overlay does (class 0 clear, the palette, alpha 0.5), to a rounding step.
    host = Overlay(0.5).render(frame, Prediction({"segmentation": prediction["segmentation"]}))
    assert np.abs(host.astype(int) - prediction.overlay.astype(int)).max() <= 1
    assert (prediction.overlay != frame).any(), "some class other than 0 is painted"
    # The pipeline's drawing then only adds text on the graph's overlay.
    drawn = Overlay(0.5).render(frame, prediction)
    assert drawn.shape == (*FRAME, 3) and (drawn != prediction.overlay).any()


def _smooth_frames(count: int) -> list[np.ndarray]:
    """Frames with no detail finer than the model's pixels: there every resize filter gives the same input."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (count, 4, 6, 3)).astype(np.uint8)
    return [cv2.resize(c, FRAME[::-1], interpolation=cv2.INTER_CUBIC) for c in coarse]


def test_the_in_graph_path_is_the_host_path_with_logits_upsampled_before_the_argmax(fixed_file, checkpoint, tmp_path):
    """On smooth frames the graph's resize and the host's give the network the same input. The graph's mask
    is then the host's logits, bilinearly upsampled to the frame, then argmax. A transposed, flipped or
    shifted resize inside the graph would disagree far more."""
    raw = export_onnx(checkpoint, tmp_path / "raw.onnx", ExportOptions(raw_logits=True)).path
    frame_sized, host = Engine(fixed_file, device="cpu"), Engine(raw, device="cpu")
    for frame in _smooth_frames(6):
        ours = frame_sized.predict(frame)
        small = host.run(host.prepare(frame)[np.newaxis])
        scene = small["scene_probs"][0]
        assert np.abs(ours["scene"].probabilities - scene).max() < 0.02
        logits = small["segmentation_logits"][0].transpose(1, 2, 0)  # (h, w, C)
        upsampled = cv2.resize(logits, FRAME[::-1], interpolation=cv2.INTER_LINEAR).argmax(-1)
        mask = ours["segmentation"].mask
        assert np.mean(mask == upsampled) > 0.97
        assert np.mean(mask[:, ::-1] == upsampled) < np.mean(mask == upsampled)


def test_a_whole_number_downscale_is_opencvs_area_resize_inside_the_graph(checkpoint, tmp_path):
    """64x96 frames for a 32x32 network (2x, 3x): the graph averages each block, as INTER_AREA does on the host.
    On frames full of detail finer than the network's pixels any other filter would give another input."""
    whole = (64, 96)
    scenes = make_dataset(4, whole, seed=11)
    result = export_onnx(checkpoint, tmp_path / "area.onnx", ExportOptions(frame_size=whole), verify_data=scenes)
    assert result.parity.passed
    area = Engine(result.path, device="cpu")
    assert area.metadata.frame_resize == "area" and "area" in "\n".join(area.metadata.describe())
    host = Engine(export_onnx(checkpoint, tmp_path / "host.onnx").path, device="cpu")
    antialias = Engine(export_onnx(checkpoint, tmp_path / "aa.onnx", ExportOptions(frame_size=FRAME)).path, "cpu")
    assert antialias.metadata.frame_resize == "bilinear-antialias"  # 48x80 does not divide by 32
    for frame in np.random.default_rng(5).integers(0, 256, (4, *whole, 3), dtype=np.uint8):
        ours = area.predict(frame)["scene"].probabilities
        theirs = host.predict(frame)["scene"].probabilities  # the host resizes with INTER_AREA, to uint8
        assert np.abs(ours - theirs).max() < 0.02


def test_a_frame_of_another_size_is_refused_with_the_fix(fixed_file):
    engine = Engine(fixed_file, device="cpu")
    with pytest.raises(FrameError) as error:
        engine.predict(np.zeros((40, 50, 3), np.uint8))
    assert_one_line(error, "frame is 40x50", "takes camera frames of 48x80", "--frame-size 40x50", "dynamic")


def test_a_dynamic_file_takes_any_frame_size(dynamic_file):
    engine = Engine(dynamic_file, device="cpu")
    assert engine.metadata.frame_size == DYNAMIC
    for size in [(40, 50), (72, 128)]:
        prediction = engine.predict(np.random.default_rng(0).integers(0, 256, (*size, 3), np.uint8))
        assert prediction["segmentation"].mask.shape == size
    engine.warmup(1)
    assert "any size" in "\n".join(engine.metadata.describe())


def test_tensorrt_is_refused_a_dynamic_frame_with_the_fix(dynamic_file, fixed_file):
    """TensorRT itself is not installed here: the check that guards it is tested alone."""
    metadata = Engine(dynamic_file, device="cpu").metadata
    with pytest.raises(ConfigError) as error:
        check_static_shapes(metadata, TENSORRT_PROVIDER, dynamic_file)
    assert_one_line(error, dynamic_file.name, "--frame-size HxW", "device='cuda'")
    check_static_shapes(metadata, "CUDAExecutionProvider", dynamic_file)
    check_static_shapes(Engine(fixed_file, device="cpu").metadata, TENSORRT_PROVIDER, fixed_file)


def test_triton_reads_the_frame_size_from_the_graph(fixed_file, dynamic_file):
    assert "dims: [48, 80, 3]" in triton_config(fixed_file, "m", Engine(fixed_file, device="cpu").metadata)
    assert "dims: [-1, -1, 3]" in triton_config(dynamic_file, "m", Engine(dynamic_file, device="cpu").metadata)


def test_the_pipeline_runs_a_frame_sized_file_on_a_video(fixed_file, tmp_path):
    video = write_video(tmp_path / "in.avi", 6, size=FRAME)
    with open_source(video) as source, open_output(tmp_path / "out") as sink:
        stats = run_pipeline(Engine(fixed_file, device="cpu"), source, sink, report=None)
    assert stats.frames == 6
    assert len(list((tmp_path / "out").glob("*.png"))) == 6


def test_bad_frame_options_are_one_line(checkpoint, tmp_path):
    cases = [
        (ExportOptions(overlay=True), "give --frame-size HxW or dynamic"),
        (ExportOptions(frame_size=(8, 8000)), "frame size (8, 8000) is not usable"),
        (ExportOptions(frame_size=FRAME, overlay=True, overlay_alpha=2.0), "overlay alpha 2.0"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError) as error:
            options.validate(checkpoint)
        assert_one_line(error, message)
    scene_only = dataclasses.replace(checkpoint, tasks=checkpoint.tasks[:1])
    with pytest.raises(ConfigError) as error:
        ExportOptions(frame_size=FRAME, overlay=True).validate(scene_only)
    assert_one_line(error, "needs a segmentation task", "scene (classification)")
    result = invoke("export", "x.pt", "--frame-size", "big")
    assert result.exit_code != 0 and "expected HxW" in result.output


def test_metadata_naming_an_overlay_the_graph_lacks_is_refused(fixed_file, tmp_path):
    bad = doctor_metadata(fixed_file, tmp_path / "bad.onnx", {"overlay": '{"output": "nope", "task": "segmentation"}'})
    with pytest.raises(ModelFileError) as error:
        Engine(bad, device="cpu")
    assert_one_line(error, "overlay.output is 'nope'", "the graph lacks")


def test_the_cli_exports_a_frame_sized_file(trained_run, tmp_path):
    target = tmp_path / "cam.onnx"
    result = invoke(
        "export",
        trained_run.best_checkpoint,
        "-o",
        target,
        "--frame-size",
        "48x80",
        "--overlay-output",
        "--verify-frames",
        "8",
    )
    assert result.exit_code == 0, result.output
    assert "overlay" in [o.name for o in onnx.load(str(target)).graph.output]
