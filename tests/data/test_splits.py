"""Splits a user controls: the split and group columns of labels.csv and manifests, the group-aware automatic
split, and the frames a run records as its validation set (issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgemtl.data import load_dataset, make_dataset, open_dataset, training_sets, write_dataset
from edgemtl.data.splits import open_recorded
from edgemtl.errors import DataError
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line

SIZE = (32, 32)


@pytest.fixture
def folder(tmp_path):
    return write_dataset(tmp_path / "set", make_dataset(12, SIZE, seed=0))


def _add_columns(folder, split, group):
    lines = (folder / "labels.csv").read_text().splitlines()
    rows = [lines[0] + ",split,group"] + [f"{line},{split(i)},{group(i)}" for i, line in enumerate(lines[1:])]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def test_a_manifest_json_carries_split_and_group_keys(folder):
    samples = [
        {"image": f"images/{i:06d}.png", "scene": "left", "segmentation": f"masks/{i:06d}.png",
         "split": "val" if i < 3 else "train", "group": f"g{i // 3}"}
        for i in range(12)
    ]  # fmt: skip
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"tasks": [t.to_dict() for t in NAVIGATION_TASKS], "samples": samples}))
    train, val = training_sets(manifest, None, size=SIZE, tasks=NAVIGATION_TASKS, train_count=0, val_count=0, seed=0)
    assert val.info["image"].tolist() == [f"images/{i:06d}.png" for i in range(3)]
    assert len(train) == 9 and set(train.info["group"]) == {"g1", "g2", "g3"}
    assert len(open_dataset(manifest, "val", size=SIZE)) == 3 and len(open_dataset(manifest, "all", size=SIZE)) == 12


def test_an_unknown_split_value_names_the_file_and_row(folder):
    _add_columns(folder, lambda i: "valid" if i == 4 else "", lambda i: "")
    with pytest.raises(DataError) as error:
        load_dataset(folder)
    assert_one_line(error, str(folder / "labels.csv"), "'valid' on line 6", "train, val, test")


def test_one_group_cannot_be_split_without_leaking(folder):
    _add_columns(folder, lambda i: "", lambda i: "drive")
    with pytest.raises(DataError) as error:
        training_sets(folder, None, size=SIZE, tasks=NAVIGATION_TASKS, train_count=0, val_count=0, seed=0)
    assert_one_line(error, "one group ('drive')", "--val-data")


def test_without_groups_the_holdout_is_the_seeded_one_in_ten_it_always_was(folder):
    train, val = training_sets(folder, None, size=SIZE, tasks=NAVIGATION_TASKS, train_count=0, val_count=0, seed=3)
    order = np.random.default_rng(3).permutation(12)
    assert val.info["image"].tolist() == [f"{i:06d}.png" for i in order[:1]]
    assert len(train) == 11


def test_the_recorded_frames_open_again(folder):
    _, val = training_sets(folder, None, size=SIZE, tasks=NAVIGATION_TASKS, train_count=0, val_count=0, seed=0)
    record = val.frames_record()
    assert record == {"data": str(folder.resolve()), "images": val.info["image"].tolist()}
    again = open_recorded(record, size=SIZE, tasks=NAVIGATION_TASKS)
    assert np.array_equal(again.images, val.images)
    (folder / "labels.csv").write_text((folder / "labels.csv").read_text().split("\n", 1)[0] + "\n000000.png,left\n")
    if record["images"] != ["000000.png"]:
        with pytest.raises(DataError) as error:
            open_recorded(record, size=SIZE, tasks=NAVIGATION_TASKS)
        assert_one_line(error, "recorded frames no longer listed", "pass the data to score explicitly")
    synthetic = open_dataset("synthetic", "val", size=SIZE, count=4, seed=2)
    assert synthetic.frames_record() == {"data": "synthetic", "split": "val", "count": 4, "seed": 2}
    assert np.array_equal(
        open_recorded(synthetic.frames_record(), size=SIZE, tasks=NAVIGATION_TASKS).images, synthetic.images
    )
