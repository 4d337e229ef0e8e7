"""Dataset folders: the round trip, the file formats (palette, greyscale and foreign masks, JPEG), writing,
and one clear error per kind of bad input. Every task kind and manifests: test_manifests.py."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import edgemtl.data.folder as folder_module
from edgemtl.data import (
    ArrayDataset,
    load_folder,
    make_dataset,
    read_mask,
    read_tasks,
    write_dataset,
    write_mask,
)
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.palette import class_colors
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec
from tests.helpers import assert_one_line, assert_same_dataset, rewrite_labels

# --- round trip and file formats ---------------------------------------------------------------------


def test_round_trip(root: Path, dataset: ArrayDataset) -> None:
    assert sorted(p.name for p in root.iterdir()) == ["images", "labels.csv", "masks", "tasks.json"]
    assert read_tasks(root) == NAVIGATION_TASKS
    assert_same_dataset(load_folder(root), dataset)
    assert not [p for p in root.parent.iterdir() if p.name != "set"]  # no staging folder left behind


def test_labels_csv_holds_class_names_and_accepts_indices(root: Path, dataset: ArrayDataset) -> None:
    lines = (root / "labels.csv").read_text().splitlines()
    assert lines[0] == "image,scene"
    assert lines[1] == "000000.png,left"
    rewrite_labels(root, "000000.png,left", "000000.png,0")
    with pytest.raises(DataError) as error:  # an index is read as one only where the task says so (issue 12)
        load_folder(root)
    assert_one_line(error, "labels.csv", "'0' on line 2", "'scene'", "left, straight, right, blocked", "label_indices")
    tasks = json.loads((root / "tasks.json").read_text())
    tasks[0]["extra"]["label_indices"] = True
    (root / "tasks.json").write_text(json.dumps(tasks))
    assert_same_dataset(load_folder(root), dataset)


def test_class_names_are_matched_by_name_before_index(tmp_path: Path) -> None:
    names = tuple(str(d) for d in range(1, 10))
    digits = TaskSpec("digit", TaskKind.CLASSIFICATION, names, extra={"label_indices": True})
    data = ArrayDataset(np.zeros((2, 8, 8, 3), np.uint8), {"digit": np.array([0, 8])})
    root = write_dataset(tmp_path / "digits", data, (digits,))
    assert (root / "labels.csv").read_text().splitlines()[1:] == ["000000.png,1", "000001.png,9"]
    assert load_folder(root).targets["digit"].tolist() == [0, 8], "the cell '1' is the class named '1', not index 1"
    plain = TaskSpec("digit", TaskKind.CLASSIFICATION, digits.classes)
    (root / "tasks.json").write_text(json.dumps([plain.to_dict()]))
    rewrite_labels(root, "000000.png,1", "000000.png,0")
    with pytest.raises(DataError) as error:
        load_folder(root)
    assert_one_line(error, "'0' on line 2", "'digit'", str(root / "labels.csv"), "1, 2, 3")


def test_masks_are_palette_pngs(root: Path, dataset: ArrayDataset) -> None:
    with Image.open(root / "masks" / "000000.png") as image:
        assert image.mode == "P"
        palette = np.frombuffer(bytes(image.getpalette()[:12]), dtype=np.uint8).reshape(4, 3)
        assert np.array_equal(np.asarray(image), dataset.targets["segmentation"][0])
    assert np.array_equal(palette, class_colors(4)[:, ::-1]), "mask PNGs use the overlay colours, as RGB"


def test_class_colors() -> None:
    colors = class_colors(40)
    assert colors.shape == (40, 3) and colors.dtype == np.uint8
    assert np.array_equal(colors, class_colors(40)) and np.array_equal(colors[:4], class_colors(4))
    assert len({tuple(c) for c in colors}) == 40
    assert tuple(colors[0]) == (0, 0, 0)
    assert class_colors(256).shape == (256, 3)


def test_greyscale_masks_are_accepted(root: Path, dataset: ArrayDataset) -> None:
    mask = dataset.targets["segmentation"][1]
    Image.fromarray(mask).save(root / "masks" / "000001.png")  # mode "L"
    assert np.array_equal(read_mask(root / "masks" / "000001.png"), mask)
    assert_same_dataset(load_folder(root), dataset)


def test_resizing_on_load(root: Path, dataset: ArrayDataset) -> None:
    resized = load_folder(root, size=(16, 24))
    assert resized.images.shape == (6, 16, 24, 3)
    assert resized.targets["segmentation"].shape == (6, 16, 24)
    assert set(np.unique(resized.targets["segmentation"])) <= set(np.unique(dataset.targets["segmentation"]))


def test_images_of_several_sizes_need_a_size(root: Path) -> None:
    image = cv2.imread(str(root / "images" / "000004.png"))
    cv2.imwrite(str(root / "images" / "000004.png"), cv2.resize(image, (64, 40)))
    write_mask(root / "masks" / "000004.png", np.zeros((40, 64), np.uint8), 4)
    with pytest.raises(DataError, match=r"1 images .* differ in size .*first: 000004\.png is 40×64"):
        load_folder(root)
    assert load_folder(root, size=(32, 48)).images.shape == (6, 32, 48, 3)


def test_jpeg_images_and_explicit_tasks(root: Path) -> None:
    image = cv2.imread(str(root / "images" / "000002.png"))
    (root / "images" / "000002.png").unlink()
    cv2.imwrite(str(root / "images" / "000002.jpg"), image)
    rewrite_labels(root, "000002.png", "000002.jpg")
    (root / "tasks.json").unlink()
    loaded = load_folder(root, tasks=NAVIGATION_TASKS)
    assert len(loaded) == 6
    classification_only = load_folder(root, tasks=NAVIGATION_TASKS[:1])
    assert set(classification_only.targets) == {"scene"}


# --- bad input: one DataError naming the file ----------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere does not exist"):
        load_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("remove", "message"),
    [("images", "no images/ folder"), ("labels.csv", "no labels.csv"), ("tasks.json", "no tasks.json")],
)
def test_missing_parts(root: Path, remove: str, message: str) -> None:
    target = root / remove
    if target.is_dir():
        for file in target.iterdir():
            file.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(DataError, match=message):
        load_folder(root)


def test_listed_image_missing(root: Path) -> None:
    (root / "images" / "000002.png").unlink()
    with pytest.raises(DataError, match=r"1 images listed in .*labels\.csv missing .*first: 000002\.png"):
        load_folder(root)


def test_images_without_mask_are_counted(root: Path) -> None:
    (root / "masks" / "000003.png").unlink()
    (root / "masks" / "000005.png").unlink()
    with pytest.raises(
        DataError, match=r"2 images in .* without a mask in .*masks \(first: 000003\.png, 000005\.png\)"
    ):
        load_folder(root)


def test_unreadable_image(root: Path) -> None:
    (root / "images" / "000001.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"1 unreadable images .*first: 000001\.png"):
        load_folder(root)


def test_unknown_class_name(root: Path) -> None:
    rewrite_labels(root, "000002.png,right", "000002.png,sideways")
    expected = r"labels\.csv \(first: 'sideways' on line 4\): expected one of left, straight"
    with pytest.raises(DataError, match=expected):
        load_folder(root)


def test_labels_csv_row_with_surplus_fields(root: Path) -> None:
    rewrite_labels(root, "000002.png,right", "000002.png,right,,")
    with pytest.raises(DataError, match=r"labels\.csv line 4 has 4 fields: expected 2"):
        load_folder(root)


def test_labels_csv_without_the_task_column(root: Path) -> None:
    (root / "labels.csv").write_text("image,direction\n000000.png,left\n")
    with pytest.raises(DataError, match=r"labels\.csv has columns .*lacking \['scene'\]"):
        load_folder(root)


def test_mask_class_id_out_of_range(root: Path) -> None:
    mask = np.full((32, 48), 9, np.uint8)
    write_mask(root / "masks" / "000004.png", mask, 10)
    with pytest.raises(DataError, match=r"class ids ≥ 4 \(first: 000004\.png, max id 9\)"):
        load_folder(root)


def test_mask_size_differs_from_image(root: Path) -> None:
    write_mask(root / "masks" / "000000.png", np.zeros((30, 48), np.uint8), 4)
    with pytest.raises(DataError, match=r"first: 000000\.png is 30×48, its image 32×48"):
        load_folder(root)


@pytest.mark.parametrize(
    ("pixels", "mode"),
    [(np.zeros((32, 48, 3), np.uint8), "RGB"), (np.zeros((32, 48), np.uint16), "I;16")],
)
def test_foreign_mask_files(root: Path, pixels: np.ndarray, mode: str) -> None:
    path = root / "masks" / "000002.png"
    Image.fromarray(pixels).save(path)
    with pytest.raises(DataError, match=rf"000002\.png is a PNG image in mode {mode}.*indexed \(palette\)"):
        read_mask(path)
    with pytest.raises(DataError, match=r"1 unusable masks .*000002\.png"):
        load_folder(root)


def test_unreadable_mask(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"broken\.png cannot be read"):
        read_mask(path)


def test_empty_dataset(root: Path) -> None:
    (root / "labels.csv").write_text("image,scene\n")
    with pytest.raises(DataError, match="lists no images"):
        load_folder(root)


def test_two_segmentation_tasks_need_a_manifest(root: Path) -> None:
    tasks = (NAVIGATION_TASKS[1], TaskSpec("depth_bins", TaskKind.SEGMENTATION, ("near", "far")))
    with pytest.raises(ConfigError, match=r"at most one segmentation task .*a manifest can list one mask per task"):
        load_folder(root, tasks=tasks)


# --- writing -------------------------------------------------------------------------------------------


def test_write_refuses_a_non_empty_folder(tmp_path: Path, dataset: ArrayDataset) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="busy exists and is not empty"):
        write_dataset(target, dataset)
    with pytest.raises(OutputError, match="overwrite only replaces a dataset folder"):
        write_dataset(target, dataset, overwrite=True)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["busy"]


def test_write_overwrites_a_dataset_when_asked(root: Path) -> None:
    smaller = make_dataset(2, (16, 16), seed=9)
    write_dataset(root, smaller, overwrite=True)
    assert_same_dataset(load_folder(root), smaller)
    assert [p.name for p in root.parent.iterdir()] == ["set"]


def test_interrupted_write_leaves_nothing_complete_looking(
    tmp_path: Path, dataset: ArrayDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing_write_mask(path: Path, mask: np.ndarray, num_classes: int) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OutputError(f"cannot write mask {path}: disk full")
        write_mask(path, mask, num_classes)

    monkeypatch.setattr(folder_module, "write_mask", failing_write_mask)
    with pytest.raises(OutputError, match="disk full"):
        write_dataset(tmp_path / "set", dataset)
    assert list(tmp_path.iterdir()) == []
