"""The use cases as a library: what the CLI does, a script does with the same call, and gets the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgemtl.errors import ConfigError
from edgemtl.train import load_checkpoint
from tests.helpers import assert_one_line_error, invoke, write_images

RUN_CONFIG = """\
seed = 3
device = "cpu"
[model]
input_size = 32
[data]
train_size = 24
val_size = 8
[train]
epochs = 1
batch_size = 8
"""


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_train_from_the_cli_and_from_python_make_the_same_run(tmp_path):
    from edgemtl.commands.train import TrainOptions, run_train

    config = tmp_path / "run.toml"
    config.write_text(RUN_CONFIG)
    result = invoke("train", "--config", config, "--epochs", 1, "-o", tmp_path / "cli", "--no-progress")
    assert result.exit_code == 0, result.output
    options = TrainOptions(config=config, overrides={"train.epochs": 1}, out=tmp_path / "api", progress=False)
    trained = run_train(options, log=lambda _: None)

    cli, api = tmp_path / "cli", tmp_path / "api"
    assert trained.run_dir == api
    assert _files(cli) == _files(api) and "best.pt" in _files(api) and "metrics.jsonl" in _files(api)
    assert json.loads((cli / "config.json").read_text()) == json.loads((api / "config.json").read_text())
    assert (cli / "metrics.jsonl").read_text() == (api / "metrics.jsonl").read_text()
    ours, theirs = (load_checkpoint(folder / "best.pt").model_state for folder in (cli, api))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_overrides_are_keys_of_the_config_file():
    from edgemtl.commands.train import TrainOptions, resolve_config

    run = resolve_config(TrainOptions(overrides={"seed": 4, "model.preset": "small", "data.train_size": 9}))
    assert (run.train.seed, run.train.preset, run.data.train_size) == (4, "small", 9)
    assert run.train.input_size == (192, 320) and run.tasks  # resolved: the preset's size, the data's tasks
    with pytest.raises(ConfigError, match=r"unknown setting 'train\.epoch'"):
        resolve_config(TrainOptions(overrides={"train.epoch": 2}))


def test_splits_of_synthetic_data_are_different_scenes_and_a_folder_is_opened_whole(tmp_path):
    from edgemtl.data import open_dataset, split_seed, write_dataset

    splits = {s: open_dataset("synthetic", s, size=(32, 32), count=6, seed=1) for s in ("train", "val", "test")}
    images = [data.images.reshape(6, -1) for data in splits.values()]
    for i, first in enumerate(images):
        for second in images[i + 1 :]:
            assert not any((row == second).all(1).any() for row in first)
    assert split_seed(1, "val") != split_seed(0, "test")
    with pytest.raises(ConfigError, match="unknown split 'validation'"):
        split_seed(0, "validation")

    folder = write_dataset(tmp_path / "set", splits["train"])
    opened = open_dataset(folder, "val", size=(32, 32), count=2)
    assert len(opened) == 6 and np.array_equal(opened.images, splits["train"].images)


@pytest.mark.parametrize("command", ["predict", "eval", "bench"])
def test_the_old_spellings_still_work_and_say_so_once(command, tmp_path, exported_model):

    images = tmp_path / "images"
    write_images(images, 2, size=(32, 32))
    args = {
        "predict": ("predict", exported_model, images, "--out", tmp_path / "out"),
        "eval": ("eval", exported_model, "--frames", 4, "--out", tmp_path / "out"),
        "bench": ("bench", exported_model, "--device", "cpu", "--runs", 10, "--pipeline-frames", 0),
    }[command]
    result = invoke(*args, "--device", "cpu") if command != "bench" else invoke(*args)
    assert result.exit_code == 0, result.output
    notes = result.stderr.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(f"note: `edgemtl {command} MODEL") and "deprecated" in notes[0]


def test_a_command_that_runs_a_model_needs_the_model(tmp_path):
    assert_one_line_error(invoke("predict", tmp_path), "no model given: expected -m MODEL")
    assert_one_line_error(invoke("bench", "--device", "cpu"), "no model given: expected -m MODEL")


def test_eval_of_an_export_and_info_never_load_pytorch(tmp_path, exported_model):
    """What an integrator runs on a device without PyTorch: the runtime, the scoring and the plots."""
    script = (
        "import sys\n"
        "from edgemtl.cli import main\n"
        f"for args in (['info', {str(exported_model)!r}],\n"
        f"             ['eval', '-m', {str(exported_model)!r}, '--frames', '4', '-o', {str(tmp_path / 'e')!r}]):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('edgemtl'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "e" / "metrics.json").is_file()
