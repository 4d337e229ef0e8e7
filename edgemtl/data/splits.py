"""Where a run's frames come from: one function opens any data spec for a split.

A data spec is `synthetic` (scenes edgemtl generates), a dataset folder or a manifest file. Training,
evaluation, export verification, the demo and the benchmarks all open their data here, so a split means
the same frames everywhere: synthetic scenes of one seed are drawn per split from a seed offset of
their own, so a run's validation and test scenes are never its training scenes, nor each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.data.dataset import ArrayDataset
from edgemtl.data.folder import load_dataset, read_tasks
from edgemtl.data.table import TableColumns, read_table
from edgemtl.data.vectors import VectorDataset, fill_from_training
from edgemtl.errors import ConfigError, DataError
from edgemtl.features import FeatureSpec
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec

SYNTHETIC = "synthetic"
SYNTHETIC_TRAIN_SCENES = 3000  # enough for nano to learn the navigation tasks
SYNTHETIC_VAL_SCENES = 400  # a stable mIoU without slowing each epoch; also what `edgemtl eval` scores
#: Synthetic scenes of split s under seed n are those of seed n + SPLIT_SEED_OFFSETS[s]. The offsets are
#: primes far apart, so the seeds of different splits of nearby runs (seed 0, 1, 2 ...) never meet.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_003, "test": 2_000_003}
SPLITS = tuple(SPLIT_SEED_OFFSETS)
ALL = "all"  # every sample of a folder or manifest, whatever its split column says
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


def has_splits(dataset: ArrayDataset) -> bool:
    """Whether an on-disk dataset's split column assigns any sample to a split."""
    return "split" in dataset.info and bool(np.any(dataset.info["split"] != ""))


def select_split(dataset: ArrayDataset, split: str, name: str) -> ArrayDataset:
    """The samples of `split` where the dataset's split column says so; all of them where it has none.

    "train" also takes the samples whose split cell is empty (the automatic split decides about those
    only when no validation data exists, in `training_sets`); "all" takes every sample.
    """
    if split == ALL or not has_splits(dataset):
        return dataset
    wanted = ("train", "") if split == "train" else (split,)
    chosen = np.flatnonzero(np.isin(dataset.info["split"], wanted))
    if chosen.size == 0:
        raise DataError(
            f"{name} has a split column but no sample of split {split!r}: expected rows with split {split}, "
            "or pass another dataset"
        )
    return dataset.subset(chosen)


def scored_split(dataset: Any, split: str, seed: int, name: str) -> tuple[Any, str]:
    """The samples of a folder's, manifest's or table's `split` as a run trained on it saw them, and how they
    were chosen, in words for a report.

    Where the split column names the split, its rows. Where it names no `val` rows (or there is no column),
    "train" and "val" are derived exactly as `training_sets` derived them: the seeded holdout of `seed`
    (the run's seed). Training holds out no test frames, so a "test" split the column does not name is an
    error rather than a silent score of every frame, training frames included.
    """
    if split == ALL:
        return dataset, "all frames"
    column = "split" in dataset.info and dataset.info["split"]
    named = has_splits(dataset) and np.any(np.isin(column, ("test",) if split == "test" else ("val",)))
    if split == "test" and not named:
        where = "names no test rows" if has_splits(dataset) else "is missing (no split column)"
        raise DataError(
            f"{name} has no test split: its split column {where}, and training holds out validation frames "
            "only; score those with --split val, every frame with --split all, or mark test rows in its split column"
        )
    if named:
        return select_split(dataset, split, name), f"{split} split"
    train_set = select_split(dataset, "train", name)
    kept, held = _holdout(train_set, seed)
    derived = train_set.subset(held if split == "val" else kept)
    why = "its split column names no val rows" if has_splits(dataset) else "it has no split column"
    return derived, f"{split} split derived as training derives it ({why}: seeded holdout, seed {seed})"


def open_dataset(
    spec: str | Path,
    split: str = "train",
    *,
    size: tuple[int, int] | None,
    tasks: tuple[TaskSpec, ...] | None = None,
    count: int = 0,
    seed: int = 0,
    allow_outside: bool = False,
    columns: TableColumns | None = None,
) -> ArrayDataset | VectorDataset:
    """The frames of `split` of a data spec, at `size` (height, width), with targets for `tasks`.

    With `columns` (vector input), the spec is a table of feature vectors (edgemtl.data.table) instead,
    its split column read as a manifest's; `size` does not apply and the tasks must be given.

    synthetic: `count` scenes of the split under `seed` (targets for `tasks`, navigation by default).
    A folder or manifest: the samples its split column gives `split` (`select_split`), all of them
    without one or for split "all" (`count` and `seed` do not apply); tasks default to its own; its
    paths stay inside its folder unless `allow_outside`.
    """
    if split not in (*SPLITS, ALL):
        raise ConfigError(f"unknown split {split!r}: expected one of {', '.join((*SPLITS, ALL))}")
    if columns is not None:
        if str(spec) == SYNTHETIC or not tasks:
            raise ConfigError(
                f"vector input reads a CSV table whose target columns the [[tasks]] name, got data {str(spec)!r} "
                f"and {len(tasks or ())} tasks: give [data] train = 'table.csv' and the tasks"
            )
        return select_split(read_table(spec, columns, tasks), split, str(spec))
    if str(spec) == SYNTHETIC:
        from edgemtl.data.synthetic import make_dataset

        if split == ALL:
            raise ConfigError(f"split {ALL!r} is for a folder or manifest: synthetic scenes have train, val and test")
        scenes = make_dataset(count, size, seed=split_seed(seed, split), tasks=tasks or NAVIGATION_TASKS)
        scenes.origin = {"data": SYNTHETIC, "split": split, "count": count, "seed": seed}
        return scenes
    return select_split(load_dataset(Path(spec), tasks, size, allow_outside=allow_outside), split, str(spec))


def open_recorded(
    record: dict[str, Any],
    *,
    size: tuple[int, int],
    tasks: tuple[TaskSpec, ...],
    limit: int | None = None,
    allow_outside: bool = False,
    features: FeatureSpec | None = None,
) -> ArrayDataset | VectorDataset:
    """The frames a checkpoint recorded as its validation set (`ArrayDataset.frames_record`), at `size`.

    A vector model's record names table rows; they are read with its `features` and their empty cells
    filled with its training means, as training filled them.
    """
    if features is not None:
        rows = list(record.get("rows", []))[:limit]
        table = read_table(record["data"], TableColumns(features.names, features.missing), tasks, rows=rows)
        return table.filled(features)
    if record.get("data") == SYNTHETIC:
        count = record["count"] if limit is None else min(limit, record["count"])
        return open_dataset(SYNTHETIC, record["split"], size=size, tasks=tasks, count=count, seed=record["seed"])
    images = list(record.get("images", []))[:limit]
    return load_dataset(Path(record["data"]), tasks, size, frames=images, allow_outside=allow_outside)


def describe_record(record: dict[str, Any]) -> str:
    """A recorded set of frames in words, for reports: which data, which split."""
    if record.get("rows") is not None:
        return f"{record['data']}, the run's {len(record['rows'])} validation rows"
    if record.get("data") == SYNTHETIC:
        return f"synthetic scenes, the run's {record.get('split', 'val')} split (seed {record.get('seed', 0)})"
    return f"{record['data']}, the run's validation split"


def _holdout(data: ArrayDataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: whole groups, drawn at random (seeded), until one frame in HOLDOUT_EVERY is held out.

    A frame without a group is a group of its own, so a dataset without a group column is split frame by
    frame exactly as before groups existed. Neighbouring frames of one video share a group and so one side.
    """
    groups = data.info.get("group", np.full(len(data), "", dtype=str))
    keys = np.array([f"group:{g}" if g else f"frame:{i}" for i, g in enumerate(groups)])
    unique = list(dict.fromkeys(keys))
    if len(unique) < 2:
        raise DataError(
            f"all {len(data)} frames are in one group ({unique[0].split(':', 1)[1]!r}), so none can validate "
            "without leaking: give some frames split 'val', or pass --val-data"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    cut = max(1, len(data) // HOLDOUT_EVERY)
    held: list[str] = []
    for position in order[:-1]:  # at least one group stays for training
        if np.isin(keys, held).sum() >= cut:
            break
        held.append(unique[position])
    is_held = np.isin(keys, held)
    if len(unique) == len(data):  # one frame a group: the frames in the seeded order, as before groups existed
        return order[cut:], order[:cut]
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def training_sets(
    train: str | Path,
    val: str | Path | None,
    *,
    size: tuple[int, int] | None,
    tasks: tuple[TaskSpec, ...],
    train_count: int,
    val_count: int,
    seed: int,
    allow_outside: bool = False,
    columns: TableColumns | None = None,
) -> tuple[ArrayDataset, ArrayDataset] | tuple[VectorDataset, VectorDataset]:
    """A run's training and validation sets.

    Validation comes from `val` when given (its val split, if it has a split column); for synthetic
    training data, from the synthetic validation split; for a folder or manifest whose split column names
    val samples, from those; otherwise whole groups (the group column; a frame without one is its own
    group) holding about one frame in `HOLDOUT_EVERY` are drawn at random (seeded) and held out of
    training. Test samples never train. A table of feature vectors (`columns`) is split the same way, and
    its empty feature cells (where allowed) are then filled with the training split's means.
    """
    opened = {"size": size, "tasks": tasks, "count": val_count, "seed": seed, "allow_outside": allow_outside}
    if columns is not None:
        return fill_from_training(*_split(train, val, {**opened, "columns": columns}))
    if str(train) == SYNTHETIC:
        train_set = open_dataset(train, "train", size=size, tasks=tasks, count=train_count, seed=seed)
        val_set = open_dataset(val or SYNTHETIC, "val", size=size, tasks=tasks, count=val_count, seed=seed)
        return train_set, val_set
    return _split(train, val, opened)


def _split(train: str | Path, val: str | Path | None, opened: dict[str, Any]) -> tuple[Any, Any]:
    """A folder's, manifest's or table's training and validation sets (see `training_sets`)."""
    everything = open_dataset(train, ALL, **{**opened, "count": 0})
    train_set = select_split(everything, "train", str(train))
    if val is not None:
        return train_set, open_dataset(val, "val", **opened)
    if has_splits(everything) and np.any(everything.info["split"] == "val"):
        return train_set, select_split(everything, "val", str(train))
    kept, held = _holdout(train_set, opened["seed"])
    return train_set.subset(kept), train_set.subset(held)
