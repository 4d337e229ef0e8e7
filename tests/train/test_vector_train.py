"""Training a vector model: value heads start at their targets, runs resume, plots need no frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgemtl.commands.train import TrainOptions, run_train
from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS
from edgemtl.errors import DataError
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.config import DataConfig, RunConfig

pytestmark = pytest.mark.slow


def vector_config(table, epochs: int, plots: bool = False) -> RunConfig:
    config = TrainConfig(input="vector", preset="nano", epochs=epochs, batch_size=32, plots=plots, device="cpu")
    return RunConfig(train=config, tasks=TABULAR_TASKS, data=DataConfig(train=str(table), features=FEATURE_NAMES))


class Interrupted(Exception):
    pass


def test_a_resumed_vector_run_ends_as_an_uninterrupted_one(vector_table, tmp_path):
    quiet = {"progress": False}
    whole = run_train(TrainOptions(vector_config(vector_table, 2), out=tmp_path / "whole", **quiet), log=print)

    def crash_after_epoch_1(message: str) -> None:
        if message.startswith("epoch   1/2"):
            raise Interrupted

    with pytest.raises(Interrupted):
        run_train(TrainOptions(vector_config(vector_table, 2), out=tmp_path / "cut", **quiet), log=crash_after_epoch_1)
    resumed = run_train(TrainOptions(resume=tmp_path / "cut", **quiet), log=print)  # the run's own config.json
    assert resumed.history == whole.history
    a, b = load_checkpoint(whole.last_checkpoint), load_checkpoint(resumed.last_checkpoint)
    assert a.features == b.features
    assert all(torch.equal(a.model_state[key], b.model_state[key]) for key in a.model_state)


def test_value_heads_start_at_the_training_targets_and_plots_skip_the_frame_grid(vector_table, tmp_path):
    result = run_train(
        TrainOptions(vector_config(vector_table, 1, plots=True), out=tmp_path / "run", progress=False), log=print
    )
    state = load_checkpoint(result.best_checkpoint).model_state
    assert 100 < float(state["heads.pressure.offset"][0]) < 140  # mmHg, from the training rows
    assert float(state["heads.risk.scale"][0]) == 1.0  # logits are left alone
    files = {p.name for p in result.run_dir.iterdir()}
    assert "curves.png" in files or any(name.endswith(".png") for name in files)
    assert "predictions.png" not in files


def test_vector_data_for_an_image_config_is_refused(vector_table, tmp_path):
    from edgemtl.data import TableColumns, training_sets

    opened = {"size": None, "tasks": TABULAR_TASKS, "train_count": 0, "val_count": 0, "seed": 0}
    train_set, val_set = training_sets(vector_table, None, columns=TableColumns(FEATURE_NAMES), **opened)
    assert np.isfinite(train_set.features).all()
    with pytest.raises(DataError, match=r"the training set holds feature rows but the model input is 'image'"):
        train(TrainConfig(epochs=1, plots=False), TABULAR_TASKS, train_set, val_set, tmp_path / "x", log=print)
