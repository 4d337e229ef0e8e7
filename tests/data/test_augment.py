"""Augmentation: targets stay consistent with the pixels (flip swaps labels and mirrors masks, crops keep
masks aligned), missing targets stay missing, and a disabled config changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.data import make_dataset
from edgemtl.data.augment import AugmentConfig, augment_batch
from edgemtl.data.synthetic import CURVATURE_TASK
from edgemtl.errors import ConfigError
from edgemtl.palette import class_colors
from edgemtl.tasks import (
    IGNORE_PIXEL,
    MISSING_CLASS,
    NAVIGATION_TASKS,
    TaskKind,
    TaskSpec,
)

SIDES = TaskSpec(
    "sides", TaskKind.MULTILABEL, ("car_left", "car_right", "sign"), extra={"flip_pairs": [["car_left", "car_right"]]}
)
LANES = TaskSpec(
    "lanes",
    TaskKind.SEGMENTATION,
    ("background", "left_lane", "right_lane"),
    extra={"flip_pairs": [["left_lane", "right_lane"]]},
)
POSE = TaskSpec("pose", TaskKind.REGRESSION, ("offset", "distance"), extra={"flip_negate": ["offset"]})
TASKS = (*NAVIGATION_TASKS, SIDES, LANES, POSE, CURVATURE_TASK)


@pytest.fixture
def batch() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    data = make_dataset(6, (32, 32), seed=0)
    rng = np.random.default_rng(1)
    scene = np.array([0, 1, 2, 3, MISSING_CLASS, 0])  # left, straight, right, blocked, unlabelled, left
    sides = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [np.nan] * 3, [0, 0, 0], [1, 0, 0]], np.float32)
    lanes = rng.integers(0, 3, (6, 32, 32)).astype(np.uint8)
    lanes[:, :2] = IGNORE_PIXEL
    pose = np.array([[0.5, 2], [-1, 3], [np.nan] * 2, [0, 1], [2, 2], [-0.25, 4]], np.float32)
    curvature = np.array([0.3, -0.7, np.nan, 0, 1, -1], np.float32)  # (N,): one unnamed value may come flat
    targets = {**data.targets, "scene": scene, "sides": sides, "lanes": lanes, "pose": pose, "curvature": curvature}
    return data.images, targets


def test_the_default_config_changes_nothing(batch: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    images, targets = batch
    assert not AugmentConfig().enabled
    assert augment_batch(images, targets, TASKS, AugmentConfig(), np.random.default_rng(0)) == (images, targets)


def test_flip_mirrors_pixels_and_swaps_left_and_right(batch: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    images, targets = batch
    before = {name: target.copy() for name, target in targets.items()}
    flipped, out = augment_batch(images, targets, TASKS, AugmentConfig(flip=1.0), np.random.default_rng(0))
    assert np.array_equal(flipped, images[:, :, ::-1])
    assert np.array_equal(out["segmentation"], targets["segmentation"][:, :, ::-1])
    assert out["scene"].tolist() == [2, 1, 0, 3, MISSING_CLASS, 2]
    assert np.array_equal(out["sides"], targets["sides"][:, [1, 0, 2]], equal_nan=True)
    swap = np.array([0, 2, 1] + [0] * 251 + [0, IGNORE_PIXEL], np.uint8)  # background stays, lanes swap, 255 stays
    assert np.array_equal(out["lanes"], swap[targets["lanes"][:, :, ::-1]])
    assert np.array_equal(out["pose"], targets["pose"] * [-1, 1], equal_nan=True)
    assert np.array_equal(out["curvature"], -targets["curvature"], equal_nan=True)
    assert all(np.array_equal(before[name], targets[name], equal_nan=True) for name in targets), "inputs untouched"


def test_flip_probability_and_determinism(batch: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    images, targets = batch
    config = AugmentConfig(flip=0.5, jitter=0.3, scale=(0.8, 1.25))
    first = augment_batch(images, targets, TASKS, config, np.random.default_rng(5))
    again = augment_batch(images, targets, TASKS, config, np.random.default_rng(5))
    assert np.array_equal(first[0], again[0])
    assert all(np.array_equal(first[1][n], again[1][n], equal_nan=True) for n in targets)
    flips = [
        augment_batch(images, targets, NAVIGATION_TASKS, AugmentConfig(flip=0.5), np.random.default_rng(s))[1]
        for s in range(40)
    ]
    swapped = np.mean([f["scene"][0] == 2 for f in flips])
    assert 0.25 < swapped < 0.75


def _coloured_blocks(count: int, size: int, block: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose colour encodes the class: each block × block square one class, painted its palette colour."""
    classes = rng.integers(0, 4, (count, size // block, size // block)).astype(np.uint8)
    masks = classes.repeat(block, 1).repeat(block, 2)
    return class_colors(4)[masks], masks


def test_scale_and_crop_keep_masks_aligned_with_pixels() -> None:
    rng = np.random.default_rng(3)
    images, masks = _coloured_blocks(24, 32, 4, rng)
    targets = {"segmentation": masks, "scene": np.zeros(24, np.int64)}
    config = AugmentConfig(flip=0.5, scale=(0.7, 1.4))
    out_images, out = augment_batch(images, targets, NAVIGATION_TASKS, config, rng)
    out_masks = out["segmentation"]
    assert not np.array_equal(out_masks, masks), "geometry changed"
    assert (out_masks == IGNORE_PIXEL).any(), "zooming out leaves an unlabelled border"
    # Away from class edges (every neighbour the same class) bilinear sampling reads one block: exact colours.
    padded = np.pad(out_masks, ((0, 0), (1, 1), (1, 1)), constant_values=IGNORE_PIXEL)
    same = np.ones(out_masks.shape, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            same &= padded[:, dy : dy + 32, dx : dx + 32] == out_masks
    interior = same & (out_masks != IGNORE_PIXEL)
    assert interior.mean() > 0.25
    colours = class_colors(4)[np.where(interior, out_masks, 0)]
    assert np.array_equal(out_images[interior], colours[interior])
    # Everywhere labelled, the pixel's nearest class colour is its mask's class for almost every pixel.
    labelled = out_masks != IGNORE_PIXEL
    distance = np.abs(out_images[..., None, :].astype(int) - class_colors(4).astype(int)).sum(-1)
    assert np.mean(distance.argmin(-1)[labelled] == out_masks[labelled]) > 0.9


def test_jitter_changes_colours_only(batch: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    images, targets = batch
    out_images, out = augment_batch(images, targets, TASKS, AugmentConfig(jitter=0.4), np.random.default_rng(0))
    assert out_images.dtype == np.uint8 and out_images.shape == images.shape
    assert not np.array_equal(out_images, images)
    assert all(np.array_equal(out[name], targets[name], equal_nan=True) for name in targets)
    grey = np.full((2, 8, 8, 3), 100, np.uint8)
    grey_out, _ = augment_batch(grey, {}, (), AugmentConfig(jitter=0.4), np.random.default_rng(0))
    assert np.abs(grey_out.astype(int) - grey_out[..., :1]).max() <= 1, (
        "a grey frame stays grey (OpenCV's 8-bit rounding)"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"flip": 1.5}, r"augment flip 1\.5 is not usable: expected a probability in 0\.\.1"),
        ({"jitter": -0.1}, r"augment jitter -0\.1 is not usable"),
        ({"scale": (1.2, 0.8)}, r"augment scale \(1\.2, 0\.8\) is not usable: expected \(low, high\)"),
        ({"scale": (0.9,)}, r"augment scale \(0\.9,\) is not usable"),
    ],
)
def test_bad_configs_are_named(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AugmentConfig(**options)


def test_config_from_lists_as_a_config_file_gives_them() -> None:
    assert AugmentConfig(scale=[0.8, 1.2]).scale == (0.8, 1.2)


@pytest.mark.parametrize(
    ("kind", "classes", "extra", "message"),
    [
        (TaskKind.CLASSIFICATION, ("left", "right"), {"flip_pairs": [["left", "rihgt"]]}, "flip_pairs"),
        (TaskKind.CLASSIFICATION, ("left", "right"), {"flip_pairs": [["left", "left"]]}, "flip_pairs"),
        (TaskKind.CLASSIFICATION, ("left", "right"), {"flip_pairs": ["left", "right"]}, "flip_pairs"),
        (TaskKind.REGRESSION, ("a", "b"), {"flip_pairs": [["a", "b"]]}, "flip_pairs"),
        (TaskKind.CLASSIFICATION, ("left", "right"), {"flip_negate": True}, "flip_negate"),
        (TaskKind.REGRESSION, ("a",), {"flip_negate": ["b"]}, "flip_negate"),
    ],
)
def test_flip_declarations_are_checked_with_the_task(kind: TaskKind, classes: tuple, extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"task 't' \({kind.value}\) has {message}"):
        TaskSpec("t", kind, classes, extra=extra)


def test_scale_is_refused_for_per_image_targets_a_zoom_would_falsify():
    from edgemtl.data.synthetic import PROXIMITY_TASK
    from edgemtl.tasks import NAVIGATION_TASKS

    zoom = AugmentConfig(scale=(0.9, 1.1))
    with pytest.raises(ConfigError, match=r"tasks \['scene', 'proximity'\].*scale_invariant") as error:
        zoom.check_tasks((*NAVIGATION_TASKS, PROXIMITY_TASK))
    assert "\n" not in str(error.value)
    invariant = TaskSpec("weather", TaskKind.CLASSIFICATION, ("dry", "wet"), extra={"scale_invariant": True})
    zoom.check_tasks((invariant, NAVIGATION_TASKS[1]))  # segmentation masks move with the pixels
    AugmentConfig(flip=0.5).check_tasks(NAVIGATION_TASKS)
