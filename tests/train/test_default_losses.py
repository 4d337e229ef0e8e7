"""A task that names no loss trains with its kind's default (Dice + CE with inverse-sqrt class weights for
masks), `train` says which rare classes it found and what it does about them, and the checkpoint records the
choice; a named loss is kept as named (`--loss segmentation=ce`: plain cross-entropy, as before the default),
and a run recorded before the defaults resumes with the loss it trained with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from click.testing import CliRunner

from edgemtl.cli import main
from edgemtl.data.synthetic import make_dataset
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.losses import rare_lines, resolve_class_weights, with_losses_written_out
from tests.helpers import TINY_RUN

SCENE, SEGMENTATION = NAVIGATION_TASKS
ROAD = TaskSpec("road", "segmentation", ("background", "road", "kerb"))


def test_a_task_naming_no_loss_gets_its_kinds_default_written_out():
    scene, segmentation = with_losses_written_out(NAVIGATION_TASKS)
    assert segmentation.extra == {"loss": "dice_ce", "class_weights": "inverse_sqrt"}
    assert scene.extra == {"loss": "ce", "flip_pairs": [["left", "right"]]}  # classification: plain, unweighted
    (named,) = with_losses_written_out((replace(SEGMENTATION, extra={"loss": "ce"}),))
    assert named.extra == {"loss": "ce"}, "a named loss gets no default class weights"
    (own,) = with_losses_written_out((replace(SEGMENTATION, extra={"class_weights": [1, 1, 4, 2]}),))
    assert own.extra == {"loss": "dice_ce", "class_weights": [1, 1, 4, 2]}, "its own weights win"


def test_a_resumed_task_keeps_what_its_run_recorded():
    before_defaults = {"tasks": [{"name": "segmentation", "extra": {}}]}
    (old,) = with_losses_written_out((SEGMENTATION,), before_defaults)
    assert old.extra == {"loss": "ce"}, "a run recorded without a loss trained with the plain one"
    recorded = {"tasks": [{"name": "segmentation", "extra": {"loss": "focal", "class_weights": "median_frequency"}}]}
    assert with_losses_written_out((SEGMENTATION,), recorded)[0].extra == recorded["tasks"][0]["extra"]


def test_train_names_each_rare_class_and_what_it_does_about_it():
    counts = {"road": np.array([700, 296, 4])}  # kerb: 0.4 % of the pixels
    weights = resolve_class_weights(with_losses_written_out((ROAD,)), counts)
    (line,) = rare_lines((ROAD,), counts, weights)
    assert line.startswith(f"road: rare 'kerb' 0.40 % (weight {weights['road'][2]:.3g}) of the training pixels: ")
    assert line.endswith(
        "Dice + cross-entropy with inverse_sqrt class weights, the segmentation default, made for rare classes"
    )
    plain = replace(ROAD, extra={"loss": "ce"})
    (line,) = rare_lines((plain,), counts, {})
    assert line.endswith(
        "cross-entropy without class weights, as named: it may not be learnt (the default, Dice + cross-entropy "
        "with inverse_sqrt class weights, is made for rare classes)"
    )
    assert rare_lines((ROAD,), {"road": np.array([700, 290, 10])}, weights) == [], "1 % is not rare"
    flags = TaskSpec("flags", "multilabel", ("wet", "dry"), extra={"class_weights": "inverse_sqrt"})
    (line,) = rare_lines((flags,), {"flags": np.array([[995, 5], [500, 500]])}, {})
    assert "rare 'wet' 0.50 % of the training labelled images" in line and line.endswith("as named")


def _rare_lane(count: int) -> tuple:
    """Synthetic scenes whose lane pixels became path, but for one pixel: lane is rare."""
    data = make_dataset(count, (32, 32), seed=0)
    masks = data.targets["segmentation"]
    masks[masks == 2] = 1
    masks[0, 20, 16] = 2
    return data.subset(slice(0, count - 4)), data.subset(slice(count - 4, count))


def test_a_run_naming_no_loss_trains_dice_ce_says_so_and_records_it(tmp_path):
    lines: list[str] = []
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=8, device="cpu", plots=False)
    result = train(config, NAVIGATION_TASKS, *_rare_lane(12), tmp_path / "run", progress=False, log=lines.append)
    assert "segmentation: loss dice_ce, class weights (inverse_sqrt) background" in lines[0]
    assert lines[1].startswith("segmentation: rare 'lane' 0.01 % (weight ") and "the segmentation default" in lines[1]
    checkpoint = load_checkpoint(result.last_checkpoint)
    assert checkpoint.tasks[1].extra == {"loss": "dice_ce", "class_weights": "inverse_sqrt"}
    assert checkpoint.config["tasks"][1]["extra"] == checkpoint.tasks[1].extra
    assert len(checkpoint.class_weights["segmentation"]) == 4


def test_loss_ce_on_the_command_line_trains_and_records_plain_cross_entropy(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(epochs=1))
    flags = ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]
    result = CliRunner().invoke(main, [*flags, "--loss", "segmentation=ce"])
    assert result.exit_code == 0, result.output
    assert "segmentation: loss ce;" in result.output or result.output.count("segmentation: loss ce\n")
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint.tasks[1].extra == {"loss": "ce"} and "segmentation" not in checkpoint.class_weights


def test_a_run_from_before_the_defaults_resumes_with_plain_cross_entropy(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(TINY_RUN.format(epochs=1))
    run_dir = tmp_path / "run"
    runner = CliRunner()
    first = runner.invoke(main, ["train", "--config", str(config), "--out", str(run_dir), "--no-progress"])
    assert first.exit_code == 0, first.output
    data = torch.load(run_dir / "last.pt", weights_only=True)  # as an older edgemtl wrote it: no loss named
    for tasks in (data["tasks"], data["config"]["tasks"]):
        for task in tasks:
            task.get("extra", {}).pop("loss", None)
            task.get("extra", {}).pop("class_weights", None)
    data.pop("class_weights")
    torch.save(data, run_dir / "last.pt")
    more = runner.invoke(main, ["train", "--resume", str(run_dir), "--epochs", "2", "--no-progress"])
    assert more.exit_code == 0, more.output
    assert "segmentation: loss ce" in more.output and "inverse_sqrt" not in more.output
    assert load_checkpoint(run_dir / "last.pt").tasks[1].extra == {"loss": "ce"}


def test_the_default_is_the_measured_setting_bit_for_bit(tmp_path):
    """What docs/benchmarks.md measured as dice_ce+inverse_sqrt is what a config naming no loss trains."""
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=8, device="cpu", plots=False)
    data = _rare_lane(12)
    named = replace(SEGMENTATION, extra={"loss": "dice_ce", "class_weights": "inverse_sqrt"})
    runs = [
        train(config, (task,), *data, tmp_path / name, progress=False, log=lambda _: None)
        for name, task in (("default", SEGMENTATION), ("named", named))
    ]
    states = [load_checkpoint(run.last_checkpoint).model_state for run in runs]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])
    assert runs[0].history == runs[1].history
