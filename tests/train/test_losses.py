"""The imbalance losses on tiny tensors, checked against hand computation; class weights from frequencies;
the names chosen in a config or on the command line, refused before any data loads when wrong, recorded."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgemtl.cli import main
from edgemtl.data.synthetic import make_dataset
from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.kinds.losses import OHEM_MIN_KEPT, binary_focal, cross_entropy, dice, focal, ohem
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.config import RunConfig, load_config
from edgemtl.train.losses import class_counts, resolve_class_weights, task_loss, weights_from_counts
from edgemtl.train.overrides import with_overrides
from tests.helpers import assert_one_line_error, invoke

SEGMENTATION = TaskSpec("seg", "segmentation", ("road", "lane", "car"))
MISSING = 255


def pixels(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (2, 3, 4, 4) and targets (2, 4, 4) with a few unlabelled pixels."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 4, 4, generator=generator)
    target = torch.randint(0, 3, (2, 4, 4), generator=generator)
    target[0, 0, :2] = MISSING
    return logits, target


def test_focal_with_gamma_zero_is_cross_entropy_and_gamma_discounts_easy_pixels():
    logits, target = pixels()
    reference = F.cross_entropy(logits, target, ignore_index=MISSING)
    assert focal(logits, target, MISSING, gamma=0.0).item() == pytest.approx(reference.item(), rel=1e-6)
    assert cross_entropy(logits, target, MISSING).item() == pytest.approx(reference.item(), rel=1e-6)
    assert focal(logits, target, MISSING).item() < reference.item()
    # by hand, one pixel of probability p for its class: (1 - p)^2 · -log p
    one = torch.tensor([[2.0, 0.0]])
    p = math.exp(2) / (math.exp(2) + 1)
    assert focal(one, torch.tensor([0]), -1).item() == pytest.approx((1 - p) ** 2 * -math.log(p), rel=1e-5)


def test_class_weights_scale_each_pixel_by_its_class():
    logits, target = pixels()
    weights = torch.tensor([1.0, 3.0, 0.5])
    per_pixel = F.cross_entropy(logits, target, ignore_index=MISSING, reduction="none")
    known = target != MISSING
    expected = (per_pixel * weights[target.clamp(max=2)])[known].mean()
    assert cross_entropy(logits, target, MISSING, weights).item() == pytest.approx(expected.item(), rel=1e-6)
    ones = torch.ones(3)
    assert cross_entropy(logits, target, MISSING, ones).item() == pytest.approx(
        cross_entropy(logits, target, MISSING).item()
    )


def test_dice_is_zero_for_a_perfect_prediction_and_near_one_for_a_wrong_one():
    _, target = pixels()
    perfect = 50.0 * F.one_hot(target.clamp(max=2), 3).movedim(-1, 1).float()
    wrong = 50.0 * F.one_hot((target.clamp(max=2) + 1) % 3, 3).movedim(-1, 1).float()
    assert dice(perfect, target, MISSING).item() == pytest.approx(0.0, abs=1e-3)
    assert dice(wrong, target, MISSING).item() > 0.9


def test_ohem_averages_the_hard_pixels_only():
    logits = torch.zeros(1, 2, 1, 16)
    logits[0, 0] = 10.0  # every pixel sure of class 0
    target = torch.zeros(1, 1, 16, dtype=torch.long)
    target[0, 0, :3] = 1  # three pixels of class 1: wrongly sure, the hard ones
    ce = F.cross_entropy(logits, target, reduction="none")
    assert ohem(logits, target, MISSING).item() == pytest.approx(ce[0, 0, :3].mean().item(), rel=1e-5)
    easy = torch.zeros(1, 1, 16, dtype=torch.long)  # nothing hard: the hardest eighth is kept
    kept = math.ceil(OHEM_MIN_KEPT * 16)
    assert ohem(logits, easy, MISSING).item() == pytest.approx(
        F.cross_entropy(logits, easy, reduction="none").flatten().topk(kept).values.mean().item(), rel=1e-5
    )


def test_a_batch_without_labels_gives_zero_loss_with_zero_gradients_for_every_loss():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), MISSING)
    for name in kind_of(SEGMENTATION).loss_names:
        task = TaskSpec("seg", "segmentation", SEGMENTATION.classes, extra={"loss": name})
        loss = task_loss(task, logits, target)
        loss.backward()
        assert loss.item() == 0.0 and torch.all(logits.grad == 0), name


def test_binary_focal_with_gamma_zero_is_bce_with_positive_weights():
    logits, target = torch.randn(5, 3), (torch.rand(5, 3) > 0.5).float()
    weights = torch.tensor([1.0, 4.0, 0.5])
    reference = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weights, reduction="none")
    assert torch.allclose(binary_focal(logits, target, weights, gamma=0.0), reference, atol=1e-6)


def test_median_frequency_and_inverse_sqrt_weights_from_counts():
    counts = np.array([700, 200, 100, 0])  # the last class never occurs
    median = weights_from_counts("median_frequency", counts)
    frequencies = np.array([0.7, 0.2, 0.1])
    raw = np.median(frequencies) / frequencies
    assert median[:3] == pytest.approx(raw / (frequencies @ raw))  # normalised: an average pixel weighs 1
    assert median[3] == pytest.approx(median[:3].max())  # absent: the largest, never infinite
    inverse = weights_from_counts("inverse_sqrt", counts[:3])
    assert inverse[2] / inverse[0] == pytest.approx(math.sqrt(7))
    assert frequencies @ inverse == pytest.approx(1.0)


def test_class_weights_resolved_per_kind_from_the_training_targets():
    data = make_dataset(8, (32, 32), seed=0)
    tasks = tuple(
        TaskSpec(t.name, t.kind, t.classes, extra={"class_weights": "median_frequency"}) for t in NAVIGATION_TASKS
    )
    weights = resolve_class_weights(tasks, class_counts(tasks, data))
    shares = np.bincount(data.targets["segmentation"].ravel(), minlength=4) / data.targets["segmentation"].size
    lane = NAVIGATION_TASKS[1].classes.index("lane")
    assert weights["segmentation"].argmax() == lane == shares[shares > 0].argmin()
    assert weights["scene"] == pytest.approx(np.ones(4))  # the scene labels are balanced
    given = (TaskSpec("scene", "classification", NAVIGATION_TASKS[0].classes, extra={"class_weights": [1, 2, 3, 4]}),)
    assert resolve_class_weights(given, class_counts(given, data))["scene"].tolist() == [1, 2, 3, 4]


def test_multilabel_positive_weights_are_the_negative_to_positive_ratio():
    task = TaskSpec("flags", "multilabel", ("rare", "common"), extra={"class_weights": "median_frequency"})
    targets = np.array([[1, 1], [0, 1], [0, 0], [0, 1]], np.float32)
    counts = kind_of(task).class_counts(task, targets)
    assert counts.tolist() == [[3, 1], [1, 3]]
    pos_weight = kind_of(task).loss_weights(task, weights_from_counts("median_frequency", counts))
    assert pos_weight == pytest.approx([3.0, 1 / 3])


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"tasks.segmentation.loss": "dice"}, "unknown loss 'dice': expected one of ce, focal, dice_ce, ohem; did you"),
        ({"tasks.scene.loss": "dice_ce"}, "(classification) cannot take loss 'dice_ce', a loss of segmentation tasks"),
        ({"tasks.segmentation.loss": "bce"}, "cannot take loss 'bce', a loss of multilabel tasks: expected one of ce,"),
        ({"tasks.segmentation.class_weights": "1,2"}, "2 class_weights for 4 classes"),
        ({"tasks.segmentation.class_weights": "median"}, "did you mean 'median_frequency'?"),
        ({"tasks.segmentaton.loss": "ce"}, "no task 'segmentaton'"),
    ],
)
def test_bad_loss_settings_are_config_errors(overrides, fragment):
    with pytest.raises(ConfigError) as error:
        with_overrides(RunConfig(tasks=NAVIGATION_TASKS), overrides)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_losses_from_the_toml_file_train_and_are_recorded(tmp_path):
    config_file = tmp_path / "run.toml"
    config_file.write_text(
        '[[tasks]]\nname = "scene"\nkind = "classification"\nclasses = ["left", "straight", "right", "blocked"]\n'
        'extra = {loss = "focal"}\n'
        '[[tasks]]\nname = "segmentation"\nkind = "segmentation"\n'
        'classes = ["background", "path", "lane", "obstacle"]\n'
        'extra = {loss = "dice_ce", class_weights = "inverse_sqrt"}\n'
    )
    run = load_config(config_file)
    data = make_dataset(12, (32, 32), seed=0)
    lines: list[str] = []
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=8, device="cpu", plots=False, weighting="pcgrad")
    result = train(
        config,
        run.tasks,
        data.subset(slice(0, 8)),
        data.subset(slice(8, 12)),
        tmp_path / "run",
        progress=False,
        log=lines.append,
        settings=run,
    )
    assert "segmentation: loss dice_ce, class weights (inverse_sqrt) background" in lines[0]
    assert "scene: loss focal" in lines[0] and "weighting pcgrad" in lines[0]
    checkpoint = load_checkpoint(result.best_checkpoint)
    assert checkpoint.tasks[1].extra == {"loss": "dice_ce", "class_weights": "inverse_sqrt"}
    assert len(checkpoint.class_weights["segmentation"]) == 4 and "scene" not in checkpoint.class_weights
    saved = load_config(tmp_path / "run" / "config.json")
    assert saved.tasks == run.tasks and [t.extra for t in saved.tasks] == [t.extra for t in run.tasks]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["weighting"] == "pcgrad"


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--loss", "segmentation=dcie_ce"], "unknown loss 'dcie_ce'"),
        (["--loss", "segmentation"], "--loss 'segmentation' is not understood: expected TASK=VALUE"),
        (["--class-weights", "segmentation=1,2,3"], "3 class_weights for 4 classes"),
        (["--class-weights", "segmentation=1,x,3,4"], "class_weights '1,x,3,4'"),
    ],
)
def test_cli_bad_loss_flags_fail_in_one_line_before_any_data_loads(flags, fragment, monkeypatch, tmp_path):
    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the settings were checked")

    monkeypatch.setattr("edgemtl.commands.train.training_sets", no_loading)
    result = invoke("train", *flags, "-o", tmp_path / "run")
    assert_one_line_error(result, fragment)
    assert main.commands["train"] is not None
