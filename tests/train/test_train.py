import json

import numpy as np
import pytest
import torch

from edgemtl.data import ArrayDataset
from edgemtl.errors import CheckpointError, ConfigError, DataError, DeviceError, OutputError
from edgemtl.model import Preprocess, get_preset
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import (
    TrainConfig,
    distributed,
    load_checkpoint,
    random_checkpoint,
    resolve_device,
    save_checkpoint,
    train,
    trainer,
    validate_model,
)
from edgemtl.train.weighting import create_weighting
from tests.helpers import TINY_SIZE, strict_loads, train_split


def test_run_folder_holds_checkpoints_config_and_history(trained_run):
    folder = trained_run.run_dir
    assert {"best.pt", "last.pt", "config.json", "metrics.jsonl"} <= {p.name for p in folder.iterdir()}
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 1
    assert set(history[0]["train_loss"]) == {"scene", "segmentation"}
    assert set(history[0]["val"]["segmentation"]) >= {"miou", "pixel_accuracy", "loss"}
    assert not list(folder.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_checkpoint_carries_what_export_needs(trained_run):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    assert checkpoint.tasks == NAVIGATION_TASKS
    assert checkpoint.input_size == TINY_SIZE
    assert checkpoint.preset == "nano" and len(checkpoint.mean) == 3
    assert checkpoint.metrics["scene"]["accuracy"] == trained_run.best_metrics["scene"]["accuracy"]
    model = checkpoint.build_model()
    assert not model.training


def test_training_learns_a_learnable_signal(tmp_path):
    """Scene label = which quarter is bright; mask = bright pixels. A few epochs must beat chance clearly."""
    rng = np.random.default_rng(0)
    count = 192
    labels = rng.integers(0, 4, count)
    images = rng.integers(0, 40, (count, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((count, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        rows, cols = divmod(int(label), 2)
        images[i, rows * 16 : rows * 16 + 16, cols * 16 : cols * 16 + 16] += 200
        masks[i, rows * 16 : rows * 16 + 16, cols * 16 : cols * 16 + 16] = 1 + label % 3
    data = ArrayDataset(images, {"scene": labels, "segmentation": masks})
    config = TrainConfig(input_size=(32, 32), epochs=6, batch_size=16, learning_rate=1e-2, device="cpu")
    result = train_split(config, NAVIGATION_TASKS, data, (160, None), tmp_path)
    assert result.best_metrics["scene"]["accuracy"] > 0.6
    assert result.best_metrics["segmentation"]["pixel_accuracy"] > 0.8


def test_same_seed_gives_the_same_model(tiny_data, tmp_path):
    config = TrainConfig(input_size=TINY_SIZE, epochs=1, batch_size=16, device="cpu", seed=3)
    states = []
    for name in ("a", "b"):
        result = train_split(config, NAVIGATION_TASKS, tiny_data, (32, 40), tmp_path / name)
        states.append(load_checkpoint(result.last_checkpoint).model_state)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_evaluate_reports_every_task(trained_run, tiny_data):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    model = checkpoint.build_model()
    metrics = validate_model(model, tiny_data.subset(slice(0, 8)), Preprocess(checkpoint.mean, checkpoint.std))
    assert 0.0 <= metrics["scene"]["accuracy"] <= 1.0
    assert metrics["segmentation"]["loss"] > 0


def _without_labels(data: ArrayDataset) -> ArrayDataset:
    """The same frames with every label missing: -1 scenes, all-255 masks."""
    return ArrayDataset(
        data.images.copy(),
        {
            "scene": np.full_like(data.targets["scene"], -1),
            "segmentation": np.full_like(data.targets["segmentation"], 255),
        },
    )


def _joined(*parts: ArrayDataset) -> ArrayDataset:
    return ArrayDataset(
        np.concatenate([p.images for p in parts]),
        {name: np.concatenate([p.targets[name] for p in parts]) for name in parts[0].targets},
    )


def test_unlabelled_frames_leave_the_validation_loss_unchanged(trained_run, tiny_data):
    """Partial labels: the loss is the mean over labelled items, whatever the batches and unlabelled share."""
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    model, preprocess = checkpoint.build_model(), Preprocess(checkpoint.mean, checkpoint.std)
    labelled = tiny_data.subset(slice(0, 8))
    alone = validate_model(model, labelled, preprocess, batch_size=8)
    # Whole unlabelled batches after the labelled one, then unlabelled frames mixed into every batch.
    padded = validate_model(model, _joined(labelled, _without_labels(labelled)), preprocess, batch_size=8)
    order = np.random.default_rng(0).permutation(16)
    mixed = _joined(labelled, _without_labels(labelled)).subset(order)
    shuffled = validate_model(model, mixed, preprocess, batch_size=4)
    for name in ("scene", "segmentation"):
        assert alone[name]["loss"] > 0
        assert padded[name]["loss"] == pytest.approx(alone[name]["loss"], rel=1e-5)
    assert shuffled["scene"]["loss"] == pytest.approx(alone["scene"]["loss"], rel=1e-5)
    # The default segmentation loss is Dice + CE, and Dice's overlap is a batch's: other batches move it a little.
    assert shuffled["segmentation"]["loss"] == pytest.approx(alone["segmentation"]["loss"], rel=1e-3)
    nothing = validate_model(model, _without_labels(labelled), preprocess, batch_size=8)
    assert np.isnan(nothing["segmentation"]["loss"]), "no label at all: NaN, not a fake zero"


def test_missing_masks_leave_the_training_loss_a_mean_over_the_labelled_ones(tiny_data, tmp_path, monkeypatch):
    """Half the masks missing, in whole batches: the epoch's loss is the labelled frames' mean, not half of it.

    The batches come in order (labelled frames first) and the learning rate is zero, so the labelled
    batches are the same, seen by the same model, in both runs.
    """
    shuffled_batches = trainer._batches

    def in_order(count, batch_size, generator, context=distributed.SINGLE_PROCESS):
        return shuffled_batches(count, batch_size, None, context)  # no generator: in order

    monkeypatch.setattr(trainer, "_batches", in_order)
    config = TrainConfig(input_size=TINY_SIZE, epochs=1, batch_size=4, learning_rate=0.0, device="cpu", plots=False)
    labelled = tiny_data.subset(slice(0, 12))
    masks_missing = _joined(labelled, _without_labels(tiny_data.subset(slice(12, 24))))
    masks_missing.targets["scene"][12:] = tiny_data.targets["scene"][12:24]  # only the masks are missing
    no_masks = _without_labels(labelled)
    runs, logs = {}, []
    for name, data in (("labelled", labelled), ("half", masks_missing), ("none", no_masks)):
        result = train(
            config,
            NAVIGATION_TASKS,
            data,
            tiny_data.subset(slice(40, 48)),
            tmp_path / name,
            progress=False,
            log=logs.append,
        )
        runs[name] = result.history[-1]
    assert runs["labelled"]["train_loss"]["segmentation"] > 0
    for key in ("train_loss", "weighted_loss"):
        assert runs["half"][key]["segmentation"] == pytest.approx(runs["labelled"][key]["segmentation"], rel=1e-5)
    # A task with no label in the whole epoch reports NaN, not 0, and the log line still prints.
    assert np.isnan(runs["none"]["train_loss"]["segmentation"])
    assert "segmentation nan" in logs[-1]
    (written,) = [strict_loads(line) for line in (tmp_path / "none" / "metrics.jsonl").read_text().splitlines()]
    assert written["train_loss"]["segmentation"] is None, "NaN is written as null: metrics.jsonl stays JSON"


def test_data_of_the_wrong_size_is_refused(tiny_data, tmp_path):
    with pytest.raises(DataError, match="32x32 but the model input is 64x64"):
        train(TrainConfig(input_size=(64, 64), epochs=1), NAVIGATION_TASKS, tiny_data, tiny_data, tmp_path)


def test_class_ids_out_of_range_are_refused(tiny_data, tmp_path):
    broken = tiny_data.subset(slice(0, 8))
    broken.targets["segmentation"] = broken.targets["segmentation"].copy()
    broken.targets["segmentation"][0, 0, 0] = 9
    with pytest.raises(DataError, match=r"class ids 0\.\.9: expected 0\.\.3"):
        train(TrainConfig(input_size=TINY_SIZE, epochs=1), NAVIGATION_TASKS, broken, broken, tmp_path)


def test_unknown_weighting_and_device_are_named():
    with pytest.raises(ConfigError, match="unknown task weighting 'magic'"):
        create_weighting("magic", NAVIGATION_TASKS)
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path cannot happen")
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04broken zip"])
def test_corrupt_checkpoints_are_named(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"broken\.pt"):
        load_checkpoint(path)


def test_random_checkpoint_is_seeded_at_the_presets_size_unless_given(tmp_path):
    """Speed and parity scripts export it: the same weights on every call and every machine."""
    first, again = random_checkpoint("nano", NAVIGATION_TASKS), random_checkpoint("nano", NAVIGATION_TASKS)
    assert first.input_size == get_preset("nano").input_size
    assert all(torch.equal(first.model_state[k], again.model_state[k]) for k in first.model_state)
    other = random_checkpoint("nano", NAVIGATION_TASKS, (32, 48), seed=1)
    assert other.input_size == (32, 48)
    assert not all(torch.equal(first.model_state[k], other.model_state[k]) for k in first.model_state)
    assert load_checkpoint(save_checkpoint(other, tmp_path / "random.pt")).input_size == (32, 48)


def test_a_varied_random_checkpoint_spreads_the_box_scores_and_leaves_the_other_heads_alone():
    """Parity checks across runtimes need boxes ranked by their weights, not by float error among tied scores."""
    from edgemtl.data.synthetic import OBSTACLES_TASK
    from edgemtl.model import create_model

    tasks = (*NAVIGATION_TASKS, OBSTACLES_TASK)
    plain, varied = (random_checkpoint("nano", tasks, (64, 64), varied=v) for v in (False, True))
    changed = {k for k in plain.model_state if not torch.equal(plain.model_state[k], varied.model_state[k])}
    assert changed == {"heads.obstacles.classes.weight", "heads.obstacles.classes.bias"}
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    spread = {}
    for name, checkpoint in (("plain", plain), ("varied", varied)):
        model = create_model("nano", tasks).eval()
        model.load_state_dict(checkpoint.model_state)
        with torch.no_grad():
            logits = model(image)["obstacles"][..., 4 : 4 + len(OBSTACLES_TASK.classes)]
        spread[name] = float(logits.sigmoid().std())
    # all within float error of the 1 % prior, then around 0.5 (above the selection's threshold), far apart
    assert spread["plain"] < 1e-4 and spread["varied"] > 1e-2, spread


def test_foreign_and_missing_checkpoints(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an edgemtl checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_failed_save_keeps_the_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    target = save_checkpoint(checkpoint, tmp_path / "last.pt")
    before = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OutputError, match=r"no space left on device writing .*last\.pt"):
        save_checkpoint(checkpoint, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_signal_during_training_stops_it_between_batches_with_the_epochs_before_it_saved(
    tmp_path, tiny_data, python_signals
):
    """Ctrl-C (or SIGTERM) is latched and acted on at the next batch, never inside a save or an import."""
    import os
    import signal

    deferred = []

    def interrupt_after_first_epoch(line: str) -> None:
        if line.split()[:2] == ["epoch", "1/5"]:
            os.kill(os.getpid(), signal.SIGINT)  # lands while epoch 1's line is being logged, after its save
            deferred.append(True)  # reached: the signal did not raise here, in the middle of things

    config = TrainConfig(preset="nano", input_size=TINY_SIZE, epochs=5, batch_size=16, seed=0, device="cpu")
    data, val = tiny_data.subset(slice(0, 40)), tiny_data.subset(slice(40, 48))
    with pytest.raises(KeyboardInterrupt):
        train(config, NAVIGATION_TASKS, data, val, tmp_path / "run", progress=False, log=interrupt_after_first_epoch)
    assert deferred == [True]
    history = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in history] == [1]  # epoch 2 began, was cut, and is not recorded
    assert load_checkpoint(tmp_path / "run" / "last.pt").epoch == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is back
