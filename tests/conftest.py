"""Shared fixtures: one tiny model trained and exported once per session, reused by every test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemtl.data.synthetic import make_dataset
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import TINY_SIZE


@pytest.fixture(scope="session")
def tiny_data():
    return make_dataset(48, TINY_SIZE, seed=0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_data):
    """A nano model trained for one epoch on 32×32 scenes: seconds on a 2-core CPU."""
    from edgemtl.train import TrainConfig, train

    config = TrainConfig(preset="nano", input_size=TINY_SIZE, epochs=1, batch_size=16, seed=0, device="cpu")
    return train(
        config,
        NAVIGATION_TASKS,
        tiny_data.subset(slice(0, 40)),
        tiny_data.subset(slice(40, 48)),
        tmp_path_factory.mktemp("run"),
        progress=False,
        log=lambda _: None,
    )


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, trained_run, tiny_data) -> Path:
    from edgemtl.deploy import export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path_factory.mktemp("export") / "tiny.onnx"
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, verify_data=tiny_data.subset(slice(0, 8)))
    return path


@pytest.fixture(scope="session")
def frame_sized_model(tmp_path_factory, trained_run) -> Path:
    """The tiny model exported with --frame-size dynamic: any frame in, masks at its size out."""
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import load_checkpoint

    path = tmp_path_factory.mktemp("export") / "frame-sized.onnx"
    export_onnx(load_checkpoint(trained_run.best_checkpoint), path, ExportOptions(frame_size="dynamic"))
    return path


@pytest.fixture
def frame() -> np.ndarray:
    """A BGR frame of a size the model was not exported at, as a camera would give."""
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
