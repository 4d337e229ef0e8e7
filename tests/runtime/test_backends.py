"""Backends: device specs, OpenVINO beside ONNX Runtime, the parity check before a backend serves a file,
its cached verdict, `auto`'s choice, and the one-line errors."""

from __future__ import annotations

import logging
import platform
import sys

import numpy as np
import pytest

from edgemtl.errors import DeviceError, ModelFileError, ParityError
from edgemtl.runtime import Engine, verified
from edgemtl.runtime.backends import Target, parse_device
from edgemtl.runtime.buffers import BufferPool
from tests.helpers import assert_one_line, assert_one_line_error, invoke, write_images

openvino = pytest.importorskip("openvino")  # installed by .[dev]; the tests below need it
from edgemtl.runtime.backends import openvino_backend  # noqa: E402


def test_device_specs_name_their_backend_device_and_precision():
    assert parse_device("cpu") == Target("onnxruntime", "cpu")
    assert parse_device("openvino") == Target("openvino", "CPU", "f32")
    assert parse_device("openvino:bf16") == Target("openvino", "CPU", "bf16")
    assert parse_device("openvino:cpu:f32") == Target("openvino", "CPU", "f32")
    assert str(parse_device("openvino:bf16")) == "openvino:CPU:bf16"
    assert parse_device(str(parse_device("openvino:bf16"))) == parse_device("openvino:bf16")


def test_an_unknown_device_and_a_missing_openvino_device_are_one_line_errors():
    with pytest.raises(DeviceError) as error:
        parse_device("gpu")
    assert_one_line(error, "'gpu'", "openvino[:CPU|GPU|NPU]")
    with pytest.raises(DeviceError) as error:
        parse_device("openvino:NPU")
    assert_one_line(error, "no NPU", "it has CPU")


def test_a_precision_the_device_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(openvino_backend, "_capabilities", lambda device: ["FP32", "INT8"])
    with pytest.raises(DeviceError) as error:
        parse_device("openvino:bf16")
    assert_one_line(error, "does not support bf16", "it supports f32")


def test_openvino_missing_names_the_extra(monkeypatch, exported_model):
    openvino_backend._core.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    try:
        with pytest.raises(DeviceError) as error:
            Engine(exported_model, "openvino")
        assert_one_line(error, "openvino", "edgemtl[openvino]")
        engine = Engine(exported_model, "auto")  # auto does without it, and says why
        assert engine.providers[0] == "CPUExecutionProvider" and "not installed" in engine.choice
    finally:
        openvino_backend._core.cache_clear()


def test_openvino_gives_the_cpu_results_and_its_verdict_is_cached(exported_model, frame):
    reference = Engine(exported_model, "cpu")
    engine = Engine(exported_model, "openvino")
    assert engine.providers == ["OpenVINO CPU (f32)"] and engine.target.backend == "openvino"
    assert engine.verdict is not None and engine.verdict.ok
    ours, theirs = engine.predict(frame), reference.predict(frame)
    for name, result in theirs.items():
        if result.mask is not None:
            assert np.array_equal(ours[name].mask, result.mask)
        if getattr(result, "probabilities", None) is not None:
            assert np.abs(ours[name].probabilities - result.probabilities).max() < 1e-4
            assert ours[name].index == result.index
    again = Engine(exported_model, "openvino")
    assert again.verdict.cached and again.verdict.ok


def test_a_cached_verdict_serves_only_the_machine_and_device_it_was_checked_on(exported_model, tmp_path, monkeypatch):
    """A cache folder shared by machines (a network home, a copied ~/.cache) must not hand one CPU's verdict to
    another: OpenVINO's kernels, and whether they compute the file right, depend on the CPU (and the GPU)."""
    monkeypatch.setenv("EDGEMTL_CACHE_DIR", str(tmp_path))
    assert platform.machine() in verified.this_cpu()
    assert not Engine(exported_model, "openvino").verdict.cached
    assert Engine(exported_model, "openvino").verdict.cached
    monkeypatch.setattr(verified, "this_cpu", lambda: "aarch64 Neoverse-N1")  # the same cache, another machine
    assert not Engine(exported_model, "openvino").verdict.cached, "another CPU checks the file again"
    assert Engine(exported_model, "openvino").verdict.cached
    monkeypatch.setattr(openvino_backend, "_full_name", lambda device: "Intel(R) Arc(TM) A770 Graphics")
    assert not Engine(exported_model, "openvino").verdict.cached, "another device checks the file again"
    assert len(list((tmp_path / "verified").glob("*.json"))) == 3


def test_openvino_fills_pooled_buffers_and_batches(exported_model, frame):
    engine, reference = Engine(exported_model, "openvino"), Engine(exported_model, "cpu")
    pool = BufferPool()
    frames = [frame, frame[::-1].copy(), frame[:, ::-1].copy()]
    pooled = engine.predict_batch(frames, pool=pool)
    plain = reference.predict_batch(frames)
    for ours, theirs in zip(pooled, plain):
        assert ours.buffers and all(any(b is a for a in ours.buffers) for b in ours.buffers)
        for name, result in theirs.items():
            if result.mask is not None:
                assert np.array_equal(ours[name].mask, result.mask)


def test_a_backend_that_disagrees_is_refused_naming_the_output_and_both_values(monkeypatch, exported_model, tmp_path):
    real_run = openvino_backend.OpenVinoRunner.run

    def wrong(self, frames, pool=None):
        outputs = real_run(self, frames, pool)
        outputs["scene_probs"] = outputs["scene_probs"][:, ::-1].copy()  # classes swapped: a wrong graph
        return outputs

    monkeypatch.setattr(openvino_backend.OpenVinoRunner, "run", wrong)
    monkeypatch.setenv("EDGEMTL_CACHE_DIR", str(tmp_path))
    with pytest.raises(ParityError) as error:
        Engine(exported_model, "openvino")
    message = assert_one_line(error, "scene_probs", "openvino:CPU:f32", " vs onnxruntime ", "--device cpu")
    assert "FAILED" in message


def test_auto_passes_over_a_backend_that_disagrees_and_says_why(monkeypatch, exported_model, caplog, tmp_path):
    real_run = openvino_backend.OpenVinoRunner.run

    def wrong(self, frames, pool=None):
        outputs = real_run(self, frames, pool)
        outputs["segmentation_mask"] = np.zeros_like(outputs["segmentation_mask"]) + 1
        return outputs

    monkeypatch.setattr(openvino_backend.OpenVinoRunner, "run", wrong)
    monkeypatch.setenv("EDGEMTL_CACHE_DIR", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="edgemtl"):
        engine = Engine(exported_model, "auto")
    assert engine.providers[0] == "CPUExecutionProvider"
    assert "segmentation_mask" in engine.choice and "not OpenVINO" in engine.choice
    assert any("segmentation_mask" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_auto_refuses_a_doctored_file_before_timing_any_backend(monkeypatch, exported_model, tmp_path):
    """The error must not depend on which backend would have won (OpenVINO names no open axis)."""
    import onnx

    from tests.cli.fault_kit import doctor_metadata, tasks_with_scene_classes

    current = {p.key.removeprefix("edgemtl."): p.value for p in onnx.load(str(exported_model)).metadata_props}
    doctored = tmp_path / "three.onnx"
    doctor_metadata(exported_model, doctored, tasks_with_scene_classes(current, ["left", "straight", "right"]))
    opened = []
    monkeypatch.setattr(openvino_backend.OpenVinoBackend, "open", lambda *args: opened.append(args))
    with pytest.raises(ModelFileError) as error:
        Engine(doctored, "auto")
    assert_one_line(error, "three.onnx", "['batch', 4]", "has 3 classes")
    assert opened == []


def test_auto_times_again_at_each_open_and_reuses_only_the_correctness(monkeypatch, exported_model, tmp_path):
    """A timing taken under load must not decide for good: the second open finds the cached verdict and
    still follows this moment's timings."""
    from edgemtl.runtime import verified

    monkeypatch.setenv("EDGEMTL_CACHE_DIR", str(tmp_path))
    timings = iter([(9.0, 3.0), (1.0, 3.0)])  # OpenVINO slower at the first open, faster at the second
    monkeypatch.setattr(verified, "_timed", lambda *args: next(timings))
    first = Engine(exported_model, "auto")
    assert first.providers[0] == "CPUExecutionProvider" and "not faster" in first.choice
    second = Engine(exported_model, "auto")
    assert second.verdict.cached and second.target.backend == "openvino"
    assert "1.00 ms vs 3.00 ms" in second.choice


def test_a_dynamic_frame_sized_file_is_refused_by_openvino(frame_sized_model):
    """OpenVINO ignores the antialiasing of a downscale whose size is known only per frame."""
    with pytest.raises(ParityError) as error:
        Engine(frame_sized_model, "openvino")
    assert_one_line(error, "segmentation_mask", "agreement", "480x640")


def test_a_fixed_frame_sized_file_is_correct_under_openvino(tmp_path, trained_run):
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path / "frame.onnx"  # 50x70 → 32x32: not a whole-number scale, so an antialiased Resize
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, ExportOptions(frame_size=(50, 70), overlay=True))
    engine = Engine(path, "openvino")
    assert engine.runner.fixed == 1 and engine.verdict.ok
    frames = np.random.default_rng(5).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)
    ours, theirs = engine.run(frames), Engine(path, "cpu").run(frames)
    assert np.array_equal(ours["segmentation_mask"], theirs["segmentation_mask"])
    assert np.abs(ours["scene_probs"] - theirs["scene_probs"]).max() < 1e-4


def test_the_antialias_matrix_is_what_onnx_resize_computes():
    onnx = pytest.importorskip("onnx")
    import importlib.util
    from pathlib import Path

    import onnxruntime as ort

    script = Path(__file__).parents[2] / "benchmarks" / "openvino_antialias.py"
    spec = importlib.util.spec_from_file_location("openvino_antialias", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    resize_model = module.resize_model

    x = np.random.default_rng(0).random((1, 2, 45, 70), dtype=np.float32) * 255
    session = ort.InferenceSession(resize_model((1, 2, 45, 70), (12, 20)).SerializeToString())
    reference = session.run(None, {"x": x})[0]
    rows, columns = openvino_backend.antialias_matrix(45, 12), openvino_backend.antialias_matrix(70, 20)
    assert np.abs(rows @ x.astype(np.float64) @ columns.T - reference).max() < 1e-3
    assert onnx is not None


def test_cli_bad_openvino_device_is_one_line(exported_model, tmp_path):
    write_images(tmp_path / "in", 1)
    result = invoke("predict", tmp_path / "in", "-m", exported_model, "--device", "openvino:GPU", "-o", tmp_path / "o")
    assert_one_line_error(result, "openvino:GPU", "it has CPU")
    assert not (tmp_path / "o").exists()


def test_a_mask_id_the_metadata_has_no_class_for_is_refused_before_anything_is_written(exported_model, tmp_path):
    import json

    import onnx

    model = onnx.load(str(exported_model))
    for prop in model.metadata_props:
        if prop.key == "edgemtl.tasks":
            tasks = json.loads(prop.value)
            for task in tasks:
                if task["name"] == "segmentation":
                    task["classes"] = task["classes"][:2]
            prop.value = json.dumps(tasks)
    path = tmp_path / "few-classes.onnx"
    onnx.save(model, str(path))
    write_images(tmp_path / "in", 2)
    result = invoke("predict", tmp_path / "in", "-m", path, "-o", tmp_path / "out", "--device", "cpu")
    assert_one_line_error(result, str(path), "edgemtl.tasks", "'segmentation'", "2 classes", "segmentation_mask")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelFileError):
        Engine(path, "cpu")


def test_a_precision_hint_is_held_to_the_export_gate(exported_model, tiny_data):
    from edgemtl.deploy.verify import compare_backend_metrics

    report = compare_backend_metrics(exported_model, "openvino:bf16", tiny_data.subset(slice(0, 16)))
    assert report.precision == "openvino:CPU:bf16" and report.max_drop == 0.5  # fp16's gate
    assert [c.task for c in report.comparisons] == ["scene", "segmentation"]
    assert all(abs(c.drop) < 50 for c in report.comparisons) and report.latency_ms > 0
    assert compare_backend_metrics(exported_model, "openvino", tiny_data.subset(slice(0, 8))).max_drop == 0.1


def test_the_camera_pipeline_and_several_cameras_run_on_openvino(exported_model, tmp_path):
    from edgemtl.runtime.multicam import run_multicamera
    from edgemtl.runtime.pipeline import run_pipeline
    from edgemtl.runtime.sinks import open_output
    from edgemtl.runtime.sources import open_source
    from tests.helpers import write_video

    engine = Engine(exported_model, "openvino")
    clip = write_video(tmp_path / "a.mp4", 6, size=(48, 64))
    with open_source(clip) as source, open_output("none") as sink:
        stats = run_pipeline(engine, source, sink, report=None)
    assert stats.frames == 6 and stats.fps > 0
    sources = [open_source(clip), open_source(write_video(tmp_path / "b.mp4", 6, size=(40, 48)))]
    several = run_multicamera(engine, sources, [open_output("none")] * 2, report=None)
    assert [s.frames for s in several.sources] == [6, 6]


def test_bench_has_a_row_per_backend_and_precision_and_says_what_auto_serves(exported_model, tmp_path):
    import json

    results = tmp_path / "bench.json"
    args = ("--device", "cpu", "--device", "openvino:bf16", "--device", "openvino:GPU", "--pipeline-frames", 0)
    result = invoke("bench", "-m", exported_model, *args, "--runs", 10, "--json", results)
    assert result.exit_code == 0, result.output
    data = json.loads(results.read_text())
    runners = [r["runner"] for r in data["rows"]]
    assert runners == ["CPUExecutionProvider"] * 2 + ["OpenVINO CPU (bf16)"] * 2
    assert {r["device"] for r in data["rows"]} == {"cpu"}
    assert any("device auto here:" in n for n in data["notes"])
    assert any("openvino:GPU: skipped" in n and "it has CPU" in n for n in data["notes"])
