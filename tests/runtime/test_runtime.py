"""The embeddable runtime: Engine, results, the exported file on its own, and bad input to each.
The overlay: test_overlay.py; frame sources: test_sources.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgemtl.errors import ConfigError, DeviceError, EdgemtlError, FrameError, ModelFileError, SourceError
from edgemtl.runtime import (
    ClassificationResult,
    Engine,
    EngineOptions,
    Prediction,
    SegmentationResult,
    render_overlay,
)
from edgemtl.runtime.providers import provider_list, tensorrt_cache_folder
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line, write_foreign_onnx

SCENE, SEGMENTATION = NAVIGATION_TASKS


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


# --- Engine on the exported model -------------------------------------------------------------------


def test_engine_reports_the_cpu_provider(engine):
    assert isinstance(engine.providers, list) and engine.providers
    assert "CPUExecutionProvider" in engine.providers
    assert engine.input_size == (32, 32)
    assert engine.tasks == NAVIGATION_TASKS


def test_predict_gives_results_per_task_at_the_frame_size(engine, frame):
    prediction = engine.predict(frame)
    assert set(prediction) == {"scene", "segmentation"}

    scene = prediction["scene"]
    assert isinstance(scene, ClassificationResult)
    assert scene.label in SCENE.classes
    assert scene.probabilities.shape == (len(SCENE.classes),)
    assert abs(float(scene.probabilities.sum()) - 1.0) < 1e-5
    assert (scene.probabilities >= 0).all()
    assert scene.confidence == pytest.approx(float(scene.probabilities.max()))
    assert scene.label == SCENE.classes[int(np.argmax(scene.probabilities))]

    segmentation = prediction["segmentation"]
    assert isinstance(segmentation, SegmentationResult)
    assert segmentation.mask.shape == frame.shape[:2] == (48, 64)
    assert segmentation.mask.dtype == np.uint8
    assert int(segmentation.mask.max()) < len(SEGMENTATION.classes) == 4
    fractions = segmentation.class_fractions()
    assert set(fractions) == set(SEGMENTATION.classes)
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-3)


def test_predict_at_the_model_size_matches_run(engine, tiny_data):
    image = tiny_data.images[0]
    prediction = engine.predict(image)
    raw = engine.run(image[np.newaxis])
    np.testing.assert_array_equal(prediction["segmentation"].mask, raw["segmentation_mask"][0])
    np.testing.assert_allclose(prediction["scene"].probabilities, raw["scene_probs"][0])
    assert prediction["scene"].index == int(raw["scene_label"][0])


def test_predict_does_not_modify_the_frame(engine, frame):
    before = frame.copy()
    engine.predict(frame)
    np.testing.assert_array_equal(frame, before)


def test_run_on_a_batch(engine, tiny_data):
    frames = np.ascontiguousarray(tiny_data.images[:5])
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
    outputs = engine.run(frames)
    assert set(outputs) == {"scene_probs", "scene_label", "segmentation_mask"}
    assert outputs["scene_probs"].shape == (5, 4)
    assert outputs["scene_label"].shape == (5,)
    assert outputs["segmentation_mask"].shape == (5, 32, 32)
    np.testing.assert_allclose(outputs["scene_probs"].sum(axis=1), 1.0, atol=1e-5)
    # Batching is per-frame: the third frame alone gives what it gave in the batch.
    single = engine.run(frames[2:3])
    np.testing.assert_array_equal(single["segmentation_mask"][0], outputs["segmentation_mask"][2])
    np.testing.assert_allclose(single["scene_probs"][0], outputs["scene_probs"][2], atol=1e-5)


def test_prediction_to_dict_is_json(engine, frame):
    data = engine.predict(frame).to_dict()
    decoded = json.loads(json.dumps(data))
    assert decoded["scene"]["label"] in SCENE.classes
    assert set(decoded["scene"]["probabilities"]) == set(SCENE.classes)
    assert set(decoded["segmentation"]["class_fractions"]) == set(SEGMENTATION.classes)


# --- the exported file needs no edgemtl code ----------------------------------------------------------


def test_exported_file_runs_in_bare_onnxruntime(exported_model):
    session = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    frame = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {model_input.name: frame})))

    probs = outputs["scene_probs"]
    assert probs.shape == (1, 4) and probs.dtype == np.float32
    assert abs(float(probs.sum()) - 1.0) < 1e-5
    assert outputs["scene_label"].dtype == np.int64 and outputs["scene_label"].shape == (1,)
    assert int(outputs["scene_label"][0]) == int(np.argmax(probs[0]))
    mask = outputs["segmentation_mask"]
    assert mask.shape == (1, 32, 32) and mask.dtype == np.uint8 and int(mask.max()) < 4

    metadata = session.get_modelmeta().custom_metadata_map
    tasks = json.loads(metadata["edgemtl.tasks"])
    text = json.dumps(tasks)
    for name in (*SCENE.classes, *SEGMENTATION.classes):
        assert name in text
    assert json.loads(metadata["edgemtl.input"])["height"] == 32


# --- bad input: one-line errors of the right class ------------------------------------------------------


def test_missing_model_file(tmp_path):
    path = tmp_path / "nothing.onnx"
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "does not exist")


def test_folder_as_model(tmp_path):
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with pytest.raises(ModelFileError) as error:
        Engine(folder, device="cpu")
    assert_one_line(error, str(folder), "folder")


@pytest.mark.parametrize("content", [b"\x00\x01 not a protobuf at all " * 20, b"", b"hello\nworld\n"])
def test_non_onnx_file(tmp_path, content):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "ONNX")


def test_foreign_onnx_file(tmp_path):
    path = write_foreign_onnx(tmp_path / "identity.onnx")
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "not an edgemtl export")


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (np.zeros((48, 64, 3), np.float32), "float32"),
        (np.zeros((48, 64, 4), np.uint8), "(48, 64, 4)"),
        (np.zeros((48, 64), np.uint8), "(48, 64)"),
        (np.zeros((1, 32, 32, 3), np.uint8), "(1, 32, 32, 3)"),
        (np.zeros((32, 32, 3), np.uint8).tolist(), "list"),
        (None, "NoneType"),
    ],
    ids=["float32", "4-channels", "2d", "batch", "list", "none"],
)
def test_predict_rejects_bad_frames(engine, bad, shown):
    with pytest.raises(FrameError) as error:
        engine.predict(bad)
    assert_one_line(error, shown, "(H, W, 3) uint8")


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((1, 16, 16, 3), np.uint8),
        np.zeros((32, 32, 3), np.uint8),
        np.zeros((1, 32, 32, 3), np.float32),
        np.zeros((1, 32, 32, 1), np.uint8),
    ],
    ids=["wrong-size", "no-batch", "float32", "1-channel"],
)
def test_run_rejects_frames_not_at_the_model_size(engine, bad):
    with pytest.raises(FrameError) as error:
        engine.run(bad)
    assert_one_line(error, str(bad.shape), "(N, 32, 32, 3) uint8")


def test_unknown_device(exported_model):
    with pytest.raises(DeviceError) as error:
        Engine(exported_model, device="tpu")
    assert_one_line(error, "'tpu'", "cpu", "cuda")


def test_io_binding_gives_what_run_gives(exported_model, tiny_data):
    plain = Engine(exported_model, device="cpu")
    bound = Engine(exported_model, device="cpu", options=EngineOptions(io_binding=True, threads=1, spinning=False))
    assert bound.io_binding and not plain.io_binding
    assert "I/O binding on" in bound.describe() and "I/O binding off" in plain.describe()
    for batch in (tiny_data.images[:1], tiny_data.images[1:4], tiny_data.images[4:5]):
        expected, got = plain.run(batch), bound.run(batch)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])
    first = bound.run(tiny_data.images[:1])
    kept = {name: value.copy() for name, value in first.items()}
    bound.run(tiny_data.images[5:6])  # the bound buffers are reused: earlier results must not change
    for name in kept:
        np.testing.assert_array_equal(first[name], kept[name])


def test_prepare_then_predict_is_predict(engine, frame):
    prepared = engine.prepare(frame)
    assert prepared.shape == (32, 32, 3)
    direct, split = engine.predict(frame), engine.predict(frame, prepared=prepared)
    np.testing.assert_array_equal(direct["segmentation"].mask, split["segmentation"].mask)
    np.testing.assert_array_equal(direct["scene"].probabilities, split["scene"].probabilities)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"optimization": "fast"}, "'fast'"),
        ({"threads": 0}, "threads"),
    ],
)
def test_engine_options_are_checked(options, fragment):
    with pytest.raises(ConfigError) as error:
        EngineOptions(**options)
    assert_one_line(error, fragment)


def test_cuda_graphs_need_a_gpu(exported_model):
    with pytest.raises(ConfigError) as error:
        Engine(exported_model, device="cpu", options=EngineOptions(cuda_graph=True))
    assert_one_line(error, "CUDA graphs", "GPU")


def test_cpu_session_options_are_applied(exported_model):
    options = EngineOptions(threads=1, optimization="basic", spinning=False)
    session_options = options.session_options()
    assert session_options.intra_op_num_threads == 1
    assert session_options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session_options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    engine = Engine(exported_model, device="cpu", options=options)
    assert engine.run(np.zeros((1, 32, 32, 3), np.uint8))["scene_probs"].shape == (1, 4)


def test_tensorrt_provider_options_and_cache_folder(exported_model, tmp_path):
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no TensorRT provider")
    options = EngineOptions(trt_fp16=True, cuda_graph=True, trt_cache_dir=tmp_path / "trt")
    providers = provider_list("tensorrt", options, exported_model)
    assert [p if isinstance(p, str) else p[0] for p in providers] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    trt, cuda = providers[0][1], providers[1][1]
    assert trt["trt_fp16_enable"] is True and trt["trt_cuda_graph_enable"] is True
    assert trt["trt_engine_cache_enable"] is True and cuda == {"enable_cuda_graph": "1", "prefer_nhwc": "1"}
    folder = Path(trt["trt_engine_cache_path"])
    assert folder.is_dir() and folder.parent == tmp_path / "trt"
    assert f"ort{ort.__version__}" in folder.name and folder.name.endswith("-fp16")
    other = tmp_path / "other.onnx"
    other.write_bytes(exported_model.read_bytes() + b"\x00")
    assert tensorrt_cache_folder(tmp_path, other, True).name.split("-")[1] != folder.name.split("-")[1]


@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_devices_without_a_gpu_say_what_is_missing(exported_model, device):
    try:
        engine = Engine(exported_model, device=device)
    except DeviceError as exc:
        message = str(exc)
        assert "\n" not in message and repr(device) in message
        assert "install onnxruntime-gpu" in message or "could not start" in message, message
    else:  # pragma: no cover - only on a machine with a working GPU
        assert engine.providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        pytest.skip("this machine has a usable GPU")


def test_every_runtime_error_is_an_edgemtl_error():
    for cls in (DeviceError, FrameError, ModelFileError, SourceError):
        assert issubclass(cls, EdgemtlError)


# --- the runtime imports without torch, click, matplotlib, aiohttp, mcap or trackers ---------------------


def test_runtime_works_without_torch(exported_model):
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        import edgemtl.runtime
        from edgemtl.runtime import logs, metadata, modelfile, overlay, pipeline, scoring  # noqa: F401
        from edgemtl.runtime import sinks, sources, speed, timing  # noqa: F401
        from edgemtl.runtime import multicam, results_stream, steady, tracking  # noqa: F401
        logs.quiet_libraries()
        engine = edgemtl.runtime.Engine({str(exported_model)!r}, device="cpu")
        prediction = engine.predict(np.zeros((32, 32, 3), np.uint8))
        assert set(prediction) == {{"scene", "segmentation"}}, prediction
        # click and matplotlib never; pyzmq, the viewer's, the recording's and the trackers' libraries only when used
        optional = ("zmq", "aiohttp", "mcap", "mcap_protobuf", "foxglove_schemas_protobuf", "trackers", "supervision")
        for name in ("click", "matplotlib", *optional):
            assert name not in sys.modules, name + " was imported by the runtime"
        with edgemtl.runtime.open_output("none"):
            pass
        assert "aiohttp" not in sys.modules and "mcap" not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


# --- degenerate frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 64, 3), (48, 0, 3)], ids=["0x0", "Wx0", "0xH"])
def test_an_empty_frame_is_a_frame_error_naming_its_size(engine, shape):
    with pytest.raises(FrameError) as error:
        engine.predict(np.zeros(shape, np.uint8))
    assert_one_line(error, f"{shape[1]}x{shape[0]}", "empty frame")
    with pytest.raises(FrameError):
        render_overlay(np.zeros(shape, np.uint8), Prediction({}))


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (5, 1, 3), (2, 3, 3)])
def test_tiny_frames_run_and_draw(engine, shape):
    frame = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    prediction = engine.predict(frame)
    assert prediction["segmentation"].mask.shape == shape[:2]
    assert render_overlay(frame, prediction).shape == shape


def test_the_cpu_fallback_of_auto_is_said_once_at_info_level(exported_model, monkeypatch, caplog):
    import logging

    import edgemtl.runtime.backends.ort_backend as engine_module

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider, so device='auto' never falls back")
    monkeypatch.setattr(engine_module, "_said_fallback", False)
    with caplog.at_level(logging.INFO, logger="edgemtl"):
        engines = [Engine(exported_model, device="auto") for _ in range(2)]
    if engines[0].providers[0] != "CPUExecutionProvider":
        pytest.skip("CUDA works here: there is no fallback to say")
    said = [r for r in caplog.records if "CUDA is not usable" in r.getMessage()]
    assert [r.levelno for r in said] == [logging.INFO], "once, at info level (visible with -v), never a warning"
