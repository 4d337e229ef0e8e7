"""Where a run's frames come from: one function opens any data spec for a split.

A data spec is `synthetic` (scenes edgemtl generates), a dataset folder or a manifest file. Training,
evaluation, export verification, the demo and the benchmarks all open their data here, so a split means
the same frames everywhere: synthetic scenes of one seed are drawn per split from a seed offset of
their own, so a run's validation and test scenes are never its training scenes, nor each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemtl.data.dataset import ArrayDataset
from edgemtl.data.folder import load_dataset, read_tasks
from edgemtl.errors import ConfigError
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec

SYNTHETIC = "synthetic"
SYNTHETIC_TRAIN_SCENES = 3000  # enough for nano to learn the navigation tasks
SYNTHETIC_VAL_SCENES = 400  # a stable mIoU without slowing each epoch; also what `edgemtl eval` scores
#: Synthetic scenes of split s under seed n are those of seed n + SPLIT_SEED_OFFSETS[s]. The offsets are
#: primes far apart, so the seeds of different splits of nearby runs (seed 0, 1, 2 ...) never meet.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_003, "test": 2_000_003}
SPLITS = tuple(SPLIT_SEED_OFFSETS)
#: One frame in this many of a training folder is held out for validation when no validation data is given.
HOLDOUT_EVERY = 10


def split_seed(seed: int, split: str) -> int:
    """The seed synthetic scenes of `split` are drawn from, for a run seeded `seed`."""
    if split not in SPLIT_SEED_OFFSETS:
        raise ConfigError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return seed + SPLIT_SEED_OFFSETS[split]


def dataset_tasks(spec: str | Path) -> tuple[TaskSpec, ...]:
    """The tasks a data spec labels: the navigation tasks for synthetic scenes, else the dataset's own."""
    return NAVIGATION_TASKS if str(spec) == SYNTHETIC else read_tasks(Path(spec))


def open_dataset(
    spec: str | Path,
    split: str = "train",
    *,
    size: tuple[int, int],
    tasks: tuple[TaskSpec, ...] | None = None,
    count: int = 0,
    seed: int = 0,
    allow_outside: bool = False,
) -> ArrayDataset:
    """The frames of `split` of a data spec, at `size` (height, width), with targets for `tasks`.

    synthetic: `count` scenes of the split under `seed` (targets for `tasks`, navigation by default).
    A folder or manifest: all of its frames (`count` and `seed` do not apply); tasks default to its own;
    its paths stay inside its folder unless `allow_outside`.
    """
    if str(spec) == SYNTHETIC:
        from edgemtl.data.synthetic import make_dataset

        return make_dataset(count, size, seed=split_seed(seed, split), tasks=tasks or NAVIGATION_TASKS)
    return load_dataset(Path(spec), tasks, size, allow_outside=allow_outside)


def training_sets(
    train: str | Path,
    val: str | Path | None,
    *,
    size: tuple[int, int],
    tasks: tuple[TaskSpec, ...],
    train_count: int,
    val_count: int,
    seed: int,
    allow_outside: bool = False,
) -> tuple[ArrayDataset, ArrayDataset]:
    """A run's training and validation sets.

    Validation comes from `val` when given; for synthetic training data, from the synthetic validation
    split; otherwise a random one frame in `HOLDOUT_EVERY` of the training folder (seeded) is held out of training.
    """
    opened = {"size": size, "tasks": tasks, "seed": seed, "allow_outside": allow_outside}
    train_set = open_dataset(train, "train", count=train_count, **opened)
    if val is not None or str(train) == SYNTHETIC:
        val_set = open_dataset(val or SYNTHETIC, "val", count=val_count, **opened)
        return train_set, val_set
    order = np.random.default_rng(seed).permutation(len(train_set))
    cut = max(1, len(order) // HOLDOUT_EVERY)
    return train_set.subset(order[cut:]), train_set.subset(order[:cut])
