"""A timm encoder through the whole path: trains, exports with parity, passes the ONNX full checker, runs
in OpenCV DNN and the Engine, and `bench` lists it. Random initialisation only (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgemtl.commands.bench import run_bench
from edgemtl.data.synthetic import make_dataset
from edgemtl.deploy import export_onnx
from edgemtl.runtime import Engine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig, load_checkpoint
from tests.deploy.kit import opencv_dnn_matches_onnxruntime
from tests.helpers import import_timm, train_split

import_timm()
pytestmark = pytest.mark.slow
SIZE = (64, 64)  # the timm encoders' stride is 32; regnetx_002: mobilenetv3 fails in OpenCV DNN 5.0 (docs/export.md)


@pytest.fixture(scope="module")
def timm_export(tmp_path_factory):
    data = make_dataset(24, SIZE, seed=0)
    config = TrainConfig(
        preset="nano",
        encoder="timm:regnetx_002",
        input_size=SIZE,
        epochs=1,
        batch_size=8,
        encoder_lr_scale=0.1,
        seed=0,
        device="cpu",
        plots=False,
    )
    run = train_split(config, NAVIGATION_TASKS, data, (16, 24), tmp_path_factory.mktemp("timm-run"))
    checkpoint = load_checkpoint(run.best_checkpoint)
    assert checkpoint.encoder == "timm:regnetx_002"
    path = tmp_path_factory.mktemp("timm-export") / "timm.onnx"
    result = export_onnx(checkpoint, path, verify_data=data.subset(slice(16, 24)))
    assert result.parity is not None and result.parity.passed
    return path, data


def test_timm_export_passes_the_checker_and_opencv_dnn(timm_export):
    path, data = timm_export
    onnx.checker.check_model(onnx.load(path), full_check=True)
    opencv_dnn_matches_onnxruntime(path, data.images[:2])


def test_timm_export_runs_in_the_engine_and_bench_lists_it(timm_export):
    path, _ = timm_export
    engine = Engine(path, device="cpu")
    assert engine.metadata.preset == "timm:regnetx_002 + nano heads"
    frame = np.random.default_rng(0).integers(0, 256, (72, 128, 3), dtype=np.uint8)
    assert engine.predict(frame)["segmentation"].mask.shape == (72, 128)
    report = run_bench([path], devices=("cpu",), runs=3, pipeline_frames=0)
    assert f"{path.name}: timm:regnetx_002 + nano heads, 64x64 input, fp32, resize stretch" in report.notes
    assert any(row.model == path.name for row in report.rows)
