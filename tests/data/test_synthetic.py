"""The procedural navigation scenes: deterministic, well-formed, balanced, and labelled by their geometry."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from edgemtl.data import drive_sequence, make_dataset, render_scene, sample_scene_params, scene_label
from edgemtl.data.synthetic import (
    ALL_SYNTHETIC_TASKS,
    CURVE_THRESHOLD,
    OBJECTS_TASK,
    OBSTACLE_SHAPES,
    Obstacle,
    image_targets,
    visible_obstacles,
)
from edgemtl.errors import ConfigError
from edgemtl.tasks import NAVIGATION_DIRECTIONS, NAVIGATION_SEG_CLASSES, TaskKind, TaskSpec

PATH, LANE, OBSTACLE = (NAVIGATION_SEG_CLASSES.index(c) for c in ("path", "lane", "obstacle"))
LEFT, STRAIGHT, RIGHT, BLOCKED = range(4)


def _standing_on_path(mask: np.ndarray) -> float:
    """Largest fraction of the path's width, in the lower 40 % of the frame, taken by obstacle pixels
    that stand directly on path or lane pixels: what "blocked" means, measured on the mask alone."""
    height = mask.shape[0]
    best = 0.0
    for row in range(int(0.6 * height), height - 1):
        ground_below = np.isin(mask[row + 1], (PATH, LANE))
        columns = np.flatnonzero(ground_below)
        if columns.size:
            standing = np.count_nonzero((mask[row] == OBSTACLE) & ground_below)
            best = max(best, standing / (columns[-1] - columns[0] + 1))
    return best


def test_render_scene_shapes_dtypes_and_ids() -> None:
    params = sample_scene_params(np.random.default_rng(0))
    image, mask, label = render_scene(params, (32, 32))
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert mask.shape == (32, 32) and mask.dtype == np.uint8
    assert int(mask.max()) < len(NAVIGATION_SEG_CLASSES)
    assert label == scene_label(params) and 0 <= label < len(NAVIGATION_DIRECTIONS)


def test_make_dataset_is_deterministic_and_seed_dependent() -> None:
    first = make_dataset(8, (32, 32), seed=3)
    again = make_dataset(8, (32, 32), seed=3)
    other = make_dataset(8, (32, 32), seed=4)
    assert np.array_equal(first.images, again.images)
    for name in ("scene", "segmentation"):
        assert np.array_equal(first.targets[name], again.targets[name])
    assert not np.array_equal(first.images, other.images)
    prefix = make_dataset(4, (32, 32), seed=3)  # a larger n extends a smaller one, never reshuffles it
    assert np.array_equal(prefix.images, first.images[:4])


def test_make_dataset_targets() -> None:
    dataset = make_dataset(12, (32, 48), seed=0)
    assert dataset.images.shape == (12, 32, 48, 3) and dataset.images.dtype == np.uint8
    assert dataset.targets["scene"].dtype == np.int64
    assert dataset.targets["segmentation"].shape == (12, 32, 48)
    assert dataset.targets["segmentation"].dtype == np.uint8
    for class_id in range(len(NAVIGATION_SEG_CLASSES)):  # every class shows up
        assert np.any(dataset.targets["segmentation"] == class_id)


def test_labels_are_balanced_and_match_the_forced_direction() -> None:
    labels = make_dataset(200, (16, 16), seed=1).targets["scene"]
    assert np.array_equal(labels, np.arange(200) % 4)
    rng = np.random.default_rng(2)
    free = [scene_label(sample_scene_params(rng)) for _ in range(400)]
    assert all(60 <= count <= 140 for count in np.bincount(free, minlength=4))


def test_blocked_exactly_when_an_obstacle_stands_on_the_near_path() -> None:
    dataset = make_dataset(200, (48, 64), seed=7)
    for mask, label in zip(dataset.targets["segmentation"], dataset.targets["scene"], strict=True):
        ratio = _standing_on_path(mask)
        if label == BLOCKED:
            assert ratio >= 0.15
        else:
            assert ratio <= 0.02


def test_obstacles_are_large_enough_to_learn() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        params = sample_scene_params(rng)
        for obstacle in params.obstacles:
            width = 2 * obstacle.half_width * params.path_half_width * obstacle.depth
            assert width >= 0.0625 - 1e-9  # 8 px at 128 px


def test_sizes_render_the_same_scene() -> None:
    params = sample_scene_params(np.random.default_rng(11), direction=BLOCKED)
    image, mask, _ = render_scene(params, (96, 160))
    assert image.shape == (96, 160, 3) and mask.shape == (96, 160)
    _, large, _ = render_scene(params, (128, 128))
    _, small, _ = render_scene(params, (32, 32))
    assert np.mean(large[2::4, 2::4] == small) > 0.9


@pytest.mark.parametrize("size", [(0, 32), (4, 4), (32,), "big"])
def test_unusable_size_is_a_config_error(size: object) -> None:
    with pytest.raises(ConfigError, match="size"):
        render_scene(sample_scene_params(np.random.default_rng(0)), size)  # type: ignore[arg-type]


def test_forcing_an_unknown_direction_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="direction"):
        sample_scene_params(np.random.default_rng(0), direction=7)


# --- the per-image targets beyond navigation: objects (multilabel), curvature and proximity (regression) ---


def test_all_synthetic_tasks_keep_the_scenes_and_add_targets() -> None:
    default = make_dataset(16, (32, 48), seed=3)
    everything = make_dataset(16, (32, 48), seed=3, tasks=ALL_SYNTHETIC_TASKS)
    assert np.array_equal(default.images, everything.images)  # asking for more targets changes no scene
    for name in ("scene", "segmentation"):
        assert np.array_equal(default.targets[name], everything.targets[name])
    assert list(everything.targets) == [t.name for t in ALL_SYNTHETIC_TASKS]
    assert everything.targets["objects"].shape == (16, 3) and everything.targets["objects"].dtype == np.float32
    assert set(np.unique(everything.targets["objects"])) <= {0.0, 1.0}
    for name in ("curvature", "proximity"):
        assert everything.targets[name].shape == (16, 1) and everything.targets[name].dtype == np.float32
    only = make_dataset(4, (32, 48), seed=3, tasks=(OBJECTS_TASK,))
    assert list(only.targets) == ["objects"] and np.array_equal(only.images, default.images[:4])


def test_targets_agree_with_the_label_and_the_mask() -> None:
    data = make_dataset(120, (64, 64), seed=4, tasks=ALL_SYNTHETIC_TASKS)
    labels = data.targets["scene"]
    curvature, proximity = data.targets["curvature"][:, 0], data.targets["proximity"][:, 0]
    assert np.all(curvature[labels == LEFT] <= -CURVE_THRESHOLD)  # negative: bends left
    assert np.all(curvature[labels == RIGHT] >= CURVE_THRESHOLD)
    assert np.all(np.abs(curvature[labels == STRAIGHT]) < CURVE_THRESHOLD)
    assert np.all((proximity >= 0) & (proximity <= 1))
    assert proximity[labels == BLOCKED].min() > proximity[labels != BLOCKED].max()  # blocked: something is near
    for flags, mask in zip(data.targets["objects"], data.targets["segmentation"], strict=True):
        if flags.any():
            assert np.count_nonzero(mask == OBSTACLE) >= 4  # a named shape is one you can see
    counts = data.targets["objects"].sum(0)
    assert np.all(counts > 20) and np.all(counts < 100)  # every shape shows up, none always does


def test_an_empty_scene_has_no_objects_and_a_clear_path() -> None:
    params = replace(sample_scene_params(np.random.default_rng(0), direction=BLOCKED), obstacles=())
    targets = image_targets(params)
    assert not targets["objects"].any() and targets["proximity"][0] == 0.0
    assert targets["curvature"][0] == np.float32(params.curvature)


def test_an_obstacle_hidden_behind_a_nearer_one_is_not_seen() -> None:
    params = sample_scene_params(np.random.default_rng(1), direction=STRAIGHT)
    near = Obstacle(depth=0.8, offset=0.0, half_width=0.9, aspect=1.2, shape="box", color=(0, 0, 255))
    hidden = Obstacle(depth=0.3, offset=0.0, half_width=0.4, aspect=1.3, shape="cone", color=(0, 255, 0))
    beside = Obstacle(depth=0.5, offset=3.0, half_width=0.4, aspect=0.6, shape="blob", color=(255, 0, 0))
    params = replace(params, obstacles=(hidden, near, beside))
    assert visible_obstacles(params) == (near, beside)  # near to far
    targets = image_targets(params)
    assert dict(zip(OBSTACLE_SHAPES, targets["objects"])) == {"box": 1.0, "blob": 1.0, "cone": 0.0}
    assert targets["proximity"][0] == np.float32(0.8)  # the box on the path; the blob beside it does not count
    alone = image_targets(replace(params, obstacles=(hidden,)))
    assert alone["objects"][OBSTACLE_SHAPES.index("cone")] == 1.0 and alone["proximity"][0] == np.float32(0.3)


@pytest.mark.parametrize(
    "task",
    [
        TaskSpec("weather", TaskKind.CLASSIFICATION, ("sun", "rain")),
        TaskSpec("objects", TaskKind.MULTILABEL, ("car", "person")),
        TaskSpec("curvature", TaskKind.REGRESSION, ("a", "b")),
    ],
)
def test_a_task_the_scenes_cannot_label_is_a_config_error(task: TaskSpec) -> None:
    with pytest.raises(ConfigError, match=rf"no target for task '{task.name}'.*they provide scene") as error:
        make_dataset(2, (16, 16), tasks=(task,))
    assert "\n" not in str(error.value)


def test_drive_sequence_is_smooth_and_deterministic() -> None:
    frames = list(drive_sequence(60, (48, 64), seed=2))
    assert len(frames) == 60
    image, mask, label = frames[0]
    assert image.shape == (48, 64, 3) and mask.shape == (48, 64) and 0 <= label < 4
    agreement = [np.mean(a[1] == b[1]) for a, b in pairwise(frames)]
    assert min(agreement) > 0.8 and np.mean(agreement) > 0.93
    sky_change = [np.abs(a[0][:4].astype(int) - b[0][:4].astype(int)).mean() for a, b in pairwise(frames)]
    assert max(sky_change) < 12  # colours and lighting hold still: only sensor noise differs
    again = list(drive_sequence(60, (48, 64), seed=2))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(frames, again, strict=True))


def test_drive_sequence_visits_several_directions() -> None:
    labels = {label for _, _, label in drive_sequence(400, (16, 16), seed=0)}
    assert len(labels) >= 3


def test_data_package_imports_no_torch() -> None:
    code = "import edgemtl.data.synthetic, edgemtl.data.folder, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
