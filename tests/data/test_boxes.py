"""Box files of a detection task in the folder format: read, resized, checked, drawn."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemtl.data import load_dataset
from edgemtl.data.check import check_dataset, sample_views
from edgemtl.errors import DataError
from edgemtl.kinds.boxes import objects_of
from edgemtl.tasks import TaskSpec, tasks_to_json

TASK = TaskSpec("things", "detection", ("cone", "person"))


def _folder(tmp_path: Path, boxes: dict[str, object], column: dict[str, str] | None = None) -> Path:
    """Four 40×20 (w×h) images a..d; box files as given (None: no file); optionally a labels.csv column."""
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "boxes").mkdir()
    for index, stem in enumerate("abcd"):
        cv2.imwrite(str(root / "images" / f"{stem}.png"), np.full((20, 40, 3), 90 + index, np.uint8))
        if boxes.get(stem) is not None:
            (root / "boxes" / f"{stem}.json").write_text(json.dumps(boxes[stem]))
    header = "image" + (",things" if column is not None else "")
    lines = [f"{s}.png" + (f",{column.get(s, '')}" if column is not None else "") for s in "abcd"]
    (root / "labels.csv").write_text("\n".join([header, *lines]) + "\n")
    (root / "tasks.json").write_text(tasks_to_json((TASK,)))
    return root


def test_an_empty_list_is_labelled_and_no_file_is_not(tmp_path: Path):
    root = _folder(
        tmp_path,
        {"a": [{"class": "person", "box": [4, 2, 20, 18]}, {"class": "cone", "box": [30, 5, 36, 15]}], "b": []},
    )
    targets = load_dataset(root).targets["things"]
    assert objects_of(targets[0]).tolist() == [[1, 4, 2, 20, 18], [0, 30, 5, 36, 15]]
    assert len(objects_of(targets[1])) == 0 and not np.isnan(targets[1]).any(), "labelled, no objects"
    assert np.isnan(targets[2]).all() and np.isnan(targets[3]).all(), "no file: not labelled"


def test_boxes_scale_with_the_loaders_resize(tmp_path: Path):
    root = _folder(tmp_path, {"a": [{"class": "cone", "box": [4, 2, 20, 18]}], "b": [], "c": [], "d": []})
    resized = load_dataset(root, size=(10, 80)).targets["things"]  # width ×2, height ÷2
    assert objects_of(resized[0]).tolist() == [[0, 8, 1, 40, 9]]


def test_a_column_names_box_files_and_an_empty_cell_leaves_the_image_unlabelled(tmp_path: Path):
    root = _folder(tmp_path, {"a": [{"class": "cone", "box": [0, 0, 5, 5]}], "b": []}, column={"a": "b.json"})
    targets = load_dataset(root).targets["things"]
    assert len(objects_of(targets[0])) == 0, "a's cell names b.json: labelled, empty"
    assert np.isnan(targets[1:]).all()


def test_boxes_outside_are_clipped_or_refused_and_flat_ones_dropped(tmp_path: Path):
    boxes = {"a": [{"class": "cone", "box": [-5, 2, 10, 30]}, {"class": "cone", "box": [5, 5, 5, 9]}]}
    assert objects_of(load_dataset(_folder(tmp_path, boxes)).targets["things"][0]).tolist() == [[0, 0, 2, 10, 20]]
    outside = {"a": [{"class": "cone", "box": [50, 2, 60, 10]}]}
    with pytest.raises(DataError, match=r"box 0 of .*a\.json is \[50.0, 2.0, 60.0, 10.0\], wholly outside its 20x40"):
        load_dataset(_folder(tmp_path / "2", outside))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([{"class": "tree", "box": [0, 0, 4, 4]}], r"box 0 of .* has class 'tree': expected one of cone, person"),
        ([{"class": "cone", "box": [0, 0, 4]}], r"box 0 of .* expected .* with four finite numbers"),
        ({"class": "cone"}, r"is not a list"),
        ([{"class": "cone", "box": [0, 0, 1, 1]}] * 1001, r"holds 1001 boxes: expected at most 1000"),
    ],
)
def test_unusable_box_files_fail_with_one_line(tmp_path: Path, content, message: str):
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(_folder(tmp_path, {"a": content}))
    assert "\n" not in str(caught.value)


def test_check_counts_boxes_sizes_and_problems_and_show_draws_them(tmp_path: Path):
    boxes = {
        "a": [{"class": "person", "box": [4, 2, 20, 18]}, {"class": "cone", "box": [-2, 5, 6, 15]}],
        "b": [{"class": "cone", "box": [3, 3, 3, 9]}],
        "c": [{"class": "robot", "box": [0, 0, 4, 4]}],
    }
    report = check_dataset(_folder(tmp_path, boxes))
    assert [p.what for p in report.problems] == ["unusable box files of 'things'"]
    text = "\n".join(report.stats)
    assert "things boxes: cone 1, person 1 (2 images labelled, 1 of them with no object; 2 unlabelled)" in text
    assert "things box sizes (√area, px): <8 1, 8-16 0, 16-32 1, 32-64 0" in text
    assert "degenerate boxes dropped: 1; boxes clipped at the frame: 1" in text
    _, views = sample_views(tmp_path / "ds", ["a.png"])
    assert "things: 2 boxes" in views[0].title
    assert (views[0].image != 90).any(), "the boxes are drawn over the grey frame"
