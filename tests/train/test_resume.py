import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from edgemtl.cli import main
from edgemtl.data import AugmentConfig
from edgemtl.data.folder import write_dataset
from edgemtl.data.synthetic import make_dataset
from edgemtl.errors import CheckpointError, ConfigError, OutputError
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.checkpoint import load_resumable
from edgemtl.train.config import DataConfig, RunConfig
from edgemtl.train.overrides import check_resumable
from tests.helpers import TINY_RUN


class Interrupted(Exception):
    """Stands in for a crash right after an epoch's checkpoints were written."""


def history(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    data = make_dataset(40, (64, 64), seed=0)
    train_set, val_set = data.subset(slice(0, 32)), data.subset(slice(32, 40))
    config = TrainConfig(input_size=(64, 64), epochs=3, batch_size=8, device="cpu", seed=5, plots=False)
    augmented = RunConfig(data=None, augment=AugmentConfig(flip=0.5, jitter=0.2))
    quiet = {"progress": False, "log": lambda _: None, "settings": augmented}
    whole = train(config, NAVIGATION_TASKS, train_set, val_set, tmp_path / "whole", **quiet)
    plain = train(config, NAVIGATION_TASKS, train_set, val_set, tmp_path / "plain", progress=False, log=lambda _: None)
    assert plain.history[0]["train_loss"] != whole.history[0]["train_loss"]  # augmentation reached the batches

    def crash_after_epoch_2(message: str) -> None:
        if message.startswith("epoch   2/3"):
            raise Interrupted

    with pytest.raises(Interrupted):
        train(
            config,
            NAVIGATION_TASKS,
            train_set,
            val_set,
            tmp_path / "cut",
            progress=False,
            log=crash_after_epoch_2,
            settings=augmented,
        )
    assert load_checkpoint(tmp_path / "cut" / "last.pt").epoch == 2
    resumed = train(config, NAVIGATION_TASKS, train_set, val_set, tmp_path / "cut", resume=True, **quiet)

    assert resumed.history == whole.history  # losses, learning rates, weights and metrics of every epoch
    assert history(tmp_path / "cut") == history(tmp_path / "whole")
    assert resumed.best_metrics == whole.best_metrics
    states = [load_checkpoint(run / "last.pt").model_state for run in (tmp_path / "whole", tmp_path / "cut")]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_only_last_pt_carries_training_state(trained_run):
    best, last = load_checkpoint(trained_run.best_checkpoint), load_checkpoint(trained_run.last_checkpoint)
    assert best.training is None and best.config == last.config
    assert {"optimizer", "scheduler", "scaler", "weighting", "rng", "history"} <= set(last.training)
    assert last.config["train"]["epochs"] == 1 and last.config["tasks"][0]["name"] == "scene"
    with pytest.raises(CheckpointError, match="holds no training state"):
        load_resumable(trained_run.best_checkpoint)


def test_checkpoints_from_before_configs_still_load_for_export(trained_run, tmp_path):
    data = torch.load(trained_run.best_checkpoint, weights_only=True)
    del data["config"]
    torch.save(data, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.config == {} and old.tasks == NAVIGATION_TASKS
    old.build_model()
    with pytest.raises(CheckpointError, match="written by an older edgemtl"):
        load_resumable(tmp_path / "old.pt")


def test_resuming_with_another_config_names_the_differences(trained_run, tiny_data):
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=16, device="cpu", learning_rate=0.1)
    with pytest.raises(
        ConfigError, match=r"differs from the saved one in train\.learning_rate \(saved 0\.004, now 0\.1\)"
    ):
        train(config, NAVIGATION_TASKS, tiny_data, tiny_data, trained_run.run_dir, resume=True)


class _FillingDisk(io.FileIO):
    """A checkpoint's file on a disk with `room` bytes left (None: as many as needed)."""

    room: int | None = None

    def write(self, data: bytes) -> int:
        if _FillingDisk.room is not None:
            if len(data) > _FillingDisk.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            _FillingDisk.room -= len(data)
        return super().write(data)


@pytest.fixture
def filling_disk(monkeypatch):
    """Checkpoints are written to a `_FillingDisk` (save_checkpoint opens its temporary file with os.fdopen)."""
    monkeypatch.setattr(_FillingDisk, "room", None)
    monkeypatch.setattr("edgemtl.train.checkpoint.os.fdopen", lambda handle, mode: _FillingDisk(handle, mode))
    return _FillingDisk


def test_torch_save_reports_a_full_disk_without_its_reason(tmp_path, filling_disk):
    """What save_checkpoint maps back: torch.save turns the writer's OSError into RuntimeError 'unexpected pos'."""
    filling_disk.room = 100
    with _FillingDisk(tmp_path / "x.pt", "wb") as file, pytest.raises(RuntimeError, match="unexpected pos"):
        torch.save({"weights": torch.zeros(1000)}, file)


def test_a_full_disk_is_one_line_keeps_the_checkpoints_and_the_resume_after_it_is_exact(
    tmp_path, tiny_data, filling_disk
):
    config = TrainConfig(input_size=(32, 32), epochs=3, batch_size=16, device="cpu", plots=False)
    sets = (tiny_data.subset(slice(0, 32)), tiny_data.subset(slice(32, 40)))
    whole = train(config, NAVIGATION_TASKS, *sets, tmp_path / "whole", progress=False, log=lambda _: None)

    def fill_the_disk_after_epoch_1(line: str) -> None:
        if line.startswith("epoch   1/3"):  # epoch 1's checkpoints are written; epoch 2's find 4 KiB free
            filling_disk.room = 4096

    run = tmp_path / "run"
    with pytest.raises(OutputError) as error:
        train(config, NAVIGATION_TASKS, *sets, run, progress=False, log=fill_the_disk_after_epoch_1)
    message = str(error.value)
    assert re.fullmatch(
        rf"no space left on device writing {re.escape(str(run))}/(best|last)\.pt: the previous one is intact; "
        r"free space and --resume",
        message,
    ), message
    assert load_resumable(run / "last.pt").epoch == 1 and load_checkpoint(run / "best.pt").epoch == 1
    assert [entry["epoch"] for entry in history(run)] == [1], "metrics.jsonl agrees with last.pt"
    assert not list(run.glob(".*.tmp")), "no partial file is left"

    filling_disk.room = None  # space freed
    resumed = train(config, NAVIGATION_TASKS, *sets, run, resume=True, progress=False, log=lambda _: None)
    assert resumed.history == whole.history and history(run) == history(tmp_path / "whole")
    states = [load_checkpoint(folder / "last.pt").model_state for folder in (tmp_path / "whole", run)]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_the_cli_resumes_extends_and_refuses_other_settings(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(epochs=5))
    run_dir = tmp_path / "run"
    runner = CliRunner()
    first = runner.invoke(
        main, ["train", "--config", str(config), "--epochs", "1", "--out", str(run_dir), "--no-progress"]
    )
    assert first.exit_code == 0, first.output
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["train"]["epochs"] == 1 and saved["data"]["train_size"] == 16  # the flag beat the file
    assert saved["model"]["input_size"] == [32, 32] and len(saved["tasks"]) == len(NAVIGATION_TASKS)

    refused = runner.invoke(main, ["train", "--resume", str(run_dir), "--lr", "0.1"])
    assert refused.exit_code == 1 and "train.learning_rate" in refused.output and "Traceback" not in refused.output
    more = runner.invoke(main, ["train", "--resume", str(run_dir), "--epochs", "2", "--no-progress"])
    assert more.exit_code == 0, more.output
    assert [entry["epoch"] for entry in history(run_dir)] == [1, 2]
    assert json.loads((run_dir / "config.json").read_text())["train"]["epochs"] == 2

    before = {name: (run_dir / name).read_bytes() for name in ("last.pt", "best.pt", "metrics.jsonl", "config.json")}
    done = runner.invoke(main, ["train", "--resume", str(run_dir), "--no-progress"])  # a finished run: exit 0
    assert done.exit_code == 0, done.output
    assert "resuming" not in done.output and f"{run_dir} is complete: it trained all 2 of its epochs" in done.output
    assert f"edgemtl train --resume {run_dir} --epochs N (N > 2)" in done.output
    assert {name: (run_dir / name).read_bytes() for name in before} == before  # nothing trained, nothing written


def test_a_run_on_a_relative_folder_resumes_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_dataset(Path("data"), make_dataset(12, (32, 32), seed=0))
    args = ["--input-size", "32", "--batch-size", "8", "--device", "cpu", "--no-progress"]
    first = CliRunner().invoke(main, ["train", "--data", "data", "--epochs", "1", "--out", "run", *args])
    assert first.exit_code == 0, first.output
    assert json.loads(Path("run/config.json").read_text())["data"]["train"] == str(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    more = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--no-progress"])
    assert more.exit_code == 0, more.output
    assert [entry["epoch"] for entry in history(tmp_path / "run")] == [1, 2]


def test_a_run_recorded_with_a_relative_folder_still_resumes(tmp_path, monkeypatch):
    """Runs from before folders were recorded absolute hold them relative to where they started."""
    monkeypatch.chdir(tmp_path)
    current = RunConfig(data=DataConfig(train="data")).to_dict()
    check_resumable(current, RunConfig(data=DataConfig(train="data").absolute()).to_dict(), tmp_path)
    with pytest.raises(ConfigError, match=r"data\.train"):
        check_resumable(current, RunConfig(data=DataConfig(train="other").absolute()).to_dict(), tmp_path)


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(epochs=6))
    run_dir = tmp_path / "run"
    script = Path(sys.executable).with_name("edgemtl")
    command = [str(script), "train", "--config", str(config), "--out", str(run_dir), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run_dir / "last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    checkpoint = load_resumable(run_dir / "last.pt")  # whenever the kill landed, last.pt is whole
    assert 1 <= checkpoint.epoch <= 6

    resumed = subprocess.run(
        [str(script), "train", "--resume", str(run_dir), "--no-progress"], capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [entry["epoch"] for entry in history(run_dir)] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(run_dir / "last.pt").epoch == 6


def test_a_run_resumes_only_with_the_process_count_it_trained_with(trained_run, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run_dir)
    last = torch.load(run_dir / "last.pt", weights_only=True)
    last["training"]["world_size"] = 2  # as if trained under torchrun --nproc_per_node 2
    torch.save(last, run_dir / "last.pt")
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=16, device="cpu")  # the fixture's run
    data = make_dataset(8, (32, 32))
    with pytest.raises(ConfigError, match=r"with 1 process\(es\): it trained with 2"):
        train(config, NAVIGATION_TASKS, data, data, run_dir, resume=True, progress=False)
