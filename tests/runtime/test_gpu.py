"""The CUDA paths of the runtime, against the CPU as the reference: provider, I/O binding, CUDA graphs
over several batch sizes, fp16, and the pipeline.

These need onnxruntime-gpu and an NVIDIA GPU; elsewhere (CI) each test is skipped, saying so.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.errors import DeviceError
from edgemtl.runtime import Engine, EngineOptions
from edgemtl.runtime.pipeline import run_pipeline
from edgemtl.runtime.sinks import NullSink
from edgemtl.runtime.sources import open_source


@pytest.fixture(scope="module", autouse=True)
def _needs_cuda(exported_model):
    """onnxruntime-gpu may be installed on a machine without a GPU: only a CUDA session that starts counts."""
    try:
        Engine(exported_model, device="cuda")
    except DeviceError as exc:
        pytest.skip(f"needs onnxruntime-gpu and an NVIDIA GPU ({exc})")


def _frames(batch: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(batch).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)


def _assert_same_results(gpu: dict[str, np.ndarray], cpu: dict[str, np.ndarray]) -> None:
    assert gpu.keys() == cpu.keys()
    for name, expected in cpu.items():
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(gpu[name], expected, atol=1e-4, err_msg=name)
        else:  # labels and masks: cuDNN's sums may flip a near-tie, so nearly all must agree
            assert (gpu[name] == expected).mean() >= 0.99, name


@pytest.fixture(scope="module")
def cpu_engine(exported_model):
    return Engine(exported_model, device="cpu")


@pytest.mark.parametrize(
    "options", [EngineOptions(), EngineOptions(io_binding=False), EngineOptions(cuda_graph=True)], ids=str
)
def test_cuda_matches_the_cpu_at_every_batch(exported_model, cpu_engine, options):
    engine = Engine(exported_model, device="cuda", options=options)
    assert engine.providers[0] == "CUDAExecutionProvider"
    assert engine.io_binding is (options.io_binding is not False)
    for batch in (1, 4, 1, 4):  # with CUDA graphs, each batch size replays its own captured graph
        _assert_same_results(engine.run(_frames(batch)), cpu_engine.run(_frames(batch)))


def test_cuda_graphs_replay_new_frames_after_switching_batch_sizes(exported_model, cpu_engine):
    """Each replay must read the frames just copied in, also after another batch size's graph ran.

    Written after this file first ran on a GPU (an H100, 2026-11-25), where each batch size saw the same
    frames every time; this test itself has not run on a GPU yet.
    """
    engine = Engine(exported_model, device="cuda", options=EngineOptions(cuda_graph=True))
    for seed, batch in enumerate((1, 4, 1, 4, 1, 4, 2)):
        frames = np.random.default_rng(100 + seed).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
        _assert_same_results(engine.run(frames), cpu_engine.run(frames))


def test_bound_outputs_are_copies(exported_model):
    """A bound output buffer is overwritten by the next run: results handed out must not change."""
    engine = Engine(exported_model, device="cuda", options=EngineOptions(cuda_graph=True))
    first = engine.run(_frames(1))
    kept = {name: value.copy() for name, value in first.items()}
    engine.run(np.zeros((1, 32, 32, 3), np.uint8))
    for name, value in first.items():
        np.testing.assert_array_equal(value, kept[name])


def test_fp16_export_runs_on_cuda(tmp_path, trained_run, tiny_data, cpu_engine):
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path / "tiny.fp16.onnx"
    options = ExportOptions(precision="fp16", allow_degraded=True)
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, options, verify_data=tiny_data.subset(slice(0, 8)))
    engine = Engine(path, device="cuda")
    assert engine.metadata.precision == "fp16"
    frames = _frames(4)
    fp16, fp32 = engine.run(frames), cpu_engine.run(frames)
    np.testing.assert_allclose(fp16["scene_probs"], fp32["scene_probs"], atol=2e-2)
    assert (fp16["segmentation_mask"] == fp32["segmentation_mask"]).mean() >= 0.95


def test_pipeline_on_cuda(exported_model, tmp_path, frame):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / f"{index}.png"), frame)
    engine = Engine(exported_model, device="cuda", options=EngineOptions(cuda_graph=True))
    with open_source(folder) as source:
        stats = run_pipeline(engine, source, NullSink(), report=None)
    assert stats.frames == 5
