"""On-disk datasets (folder format, manifests): round trips of every task kind, partial labels, one clear error
per kind of bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import edgemtl.data.folder as folder_module
from edgemtl.data import (
    ArrayDataset,
    load_dataset,
    load_folder,
    load_manifest,
    make_dataset,
    read_mask,
    read_tasks,
    write_dataset,
    write_mask,
)
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.palette import class_colors
from edgemtl.tasks import IGNORE_PIXEL, MISSING_CLASS, NAVIGATION_TASKS, TaskKind, TaskSpec
from tests.helpers import assert_one_line


@pytest.fixture(scope="module")
def dataset() -> ArrayDataset:
    return make_dataset(6, (32, 48), seed=0)


@pytest.fixture
def root(tmp_path: Path, dataset: ArrayDataset) -> Path:
    return write_dataset(tmp_path / "set", dataset)


def _assert_same(a: ArrayDataset, b: ArrayDataset) -> None:
    assert np.array_equal(a.images, b.images)
    assert a.targets.keys() == b.targets.keys()
    for name in a.targets:
        assert a.targets[name].dtype == b.targets[name].dtype
        assert np.array_equal(a.targets[name], b.targets[name], equal_nan=a.targets[name].dtype.kind == "f")


def _rewrite_labels(root: Path, replace: str, by: str) -> None:
    labels = root / "labels.csv"
    labels.write_text(labels.read_text().replace(replace, by, 1))


# --- round trip and file formats ---------------------------------------------------------------------


def test_round_trip(root: Path, dataset: ArrayDataset) -> None:
    assert sorted(p.name for p in root.iterdir()) == ["images", "labels.csv", "masks", "tasks.json"]
    assert read_tasks(root) == NAVIGATION_TASKS
    _assert_same(load_folder(root), dataset)
    assert not [p for p in root.parent.iterdir() if p.name != "set"]  # no staging folder left behind


def test_labels_csv_holds_class_names_and_accepts_indices(root: Path, dataset: ArrayDataset) -> None:
    lines = (root / "labels.csv").read_text().splitlines()
    assert lines[0] == "image,scene"
    assert lines[1] == "000000.png,left"
    _rewrite_labels(root, "000000.png,left", "000000.png,0")
    with pytest.raises(DataError) as error:  # an index is read as one only where the task says so (issue 12)
        load_folder(root)
    assert_one_line(error, "labels.csv", "'0' on line 2", "'scene'", "left, straight, right, blocked", "label_indices")
    tasks = json.loads((root / "tasks.json").read_text())
    tasks[0]["extra"]["label_indices"] = True
    (root / "tasks.json").write_text(json.dumps(tasks))
    _assert_same(load_folder(root), dataset)


def test_class_names_are_matched_by_name_before_index(tmp_path: Path) -> None:
    names = tuple(str(d) for d in range(1, 10))
    digits = TaskSpec("digit", TaskKind.CLASSIFICATION, names, extra={"label_indices": True})
    data = ArrayDataset(np.zeros((2, 8, 8, 3), np.uint8), {"digit": np.array([0, 8])})
    root = write_dataset(tmp_path / "digits", data, (digits,))
    assert (root / "labels.csv").read_text().splitlines()[1:] == ["000000.png,1", "000001.png,9"]
    assert load_folder(root).targets["digit"].tolist() == [0, 8], "the cell '1' is the class named '1', not index 1"
    plain = TaskSpec("digit", TaskKind.CLASSIFICATION, digits.classes)
    (root / "tasks.json").write_text(json.dumps([plain.to_dict()]))
    _rewrite_labels(root, "000000.png,1", "000000.png,0")
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
    _assert_same(load_folder(root), dataset)


def test_resizing_on_load(root: Path, dataset: ArrayDataset) -> None:
    resized = load_folder(root, size=(16, 24))
    assert resized.images.shape == (6, 16, 24, 3)
    assert resized.targets["segmentation"].shape == (6, 16, 24)
    assert set(np.unique(resized.targets["segmentation"])) <= set(np.unique(dataset.targets["segmentation"]))


def test_images_of_several_sizes_need_a_size(root: Path) -> None:
    image = cv2.imread(str(root / "images" / "000004.png"))
    cv2.imwrite(str(root / "images" / "000004.png"), cv2.resize(image, (64, 40)))
    write_mask(root / "masks" / "000004.png", np.zeros((40, 64), np.uint8), 4)
    with pytest.raises(DataError, match=r"1 images .* differ in size .*first: 000004\.png is 64×40"):
        load_folder(root)
    assert load_folder(root, size=(32, 48)).images.shape == (6, 32, 48, 3)


def test_jpeg_images_and_explicit_tasks(root: Path) -> None:
    image = cv2.imread(str(root / "images" / "000002.png"))
    (root / "images" / "000002.png").unlink()
    cv2.imwrite(str(root / "images" / "000002.jpg"), image)
    _rewrite_labels(root, "000002.png", "000002.jpg")
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
    _rewrite_labels(root, "000002.png,right", "000002.png,sideways")
    expected = r"labels\.csv \(first: 'sideways' on line 4\): expected one of left, straight"
    with pytest.raises(DataError, match=expected):
        load_folder(root)


def test_labels_csv_row_with_surplus_fields(root: Path) -> None:
    _rewrite_labels(root, "000002.png,right", "000002.png,right,,")
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
    with pytest.raises(DataError, match=r"first: 000000\.png is 48×30, its image 48×32"):
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
    _assert_same(load_folder(root), smaller)
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


# --- all four task kinds, partial labels --------------------------------------------------------------

ALL_KINDS = (
    NAVIGATION_TASKS[0],
    TaskSpec("objects", TaskKind.MULTILABEL, ("box", "cone", "rock")),
    TaskSpec("pose", TaskKind.REGRESSION, ("offset", "heading")),
    TaskSpec("distance", TaskKind.REGRESSION),
    NAVIGATION_TASKS[1],
)


@pytest.fixture(scope="module")
def mixed() -> ArrayDataset:
    """Six 32×32 frames with a target of each kind, some of them missing (partial labels)."""
    base = make_dataset(6, (32, 32), seed=1)
    scene = base.targets["scene"].copy()
    scene[2] = MISSING_CLASS
    objects = np.array([[1, 0, 1], [0, 0, 0], [np.nan] * 3, [0, 1, 0], [1, 1, 1], [0, 0, 1]], np.float32)
    pose = np.array([[0.5, -1.25], [np.nan] * 2, [3, 0], [-0.1, 0.2], [1e-3, 7], [2, 2]], np.float32)
    distance = np.array([[1.5], [2.0], [np.nan], [0.25], [9.0], [4.0]], np.float32)
    masks = base.targets["segmentation"].copy()
    masks[3] = IGNORE_PIXEL  # no mask at all
    masks[4, :4] = IGNORE_PIXEL  # top rows unlabelled
    targets = {"scene": scene, "objects": objects, "pose": pose, "distance": distance, "segmentation": masks}
    return ArrayDataset(base.images, targets)


def test_all_kinds_round_trip_through_the_folder(tmp_path: Path, mixed: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "mixed", mixed, ALL_KINDS)
    lines = (root / "labels.csv").read_text().splitlines()
    assert lines[0] == "image,scene,objects,pose,distance,segmentation"
    assert lines[2].startswith("000001.png,") and ",-,," in lines[2], "no label present: '-'; unlabelled: empty"
    assert lines[1].split(",")[2:5] == ["box;rock", "0.5;-1.25", "1.5"]
    assert lines[3].split(",")[1] == "" and lines[4].endswith(",") and not (root / "masks" / "000003.png").exists()
    assert read_tasks(root) == ALL_KINDS
    _assert_same(load_folder(root), mixed)
    _assert_same(load_dataset(root), mixed)


def test_labels_csv_cells_by_hand(root: Path) -> None:
    scene = ALL_KINDS[0]  # its cell "2" is an index, which the task must declare (issue 12)
    scene = TaskSpec(scene.name, scene.kind, scene.classes, extra={**scene.extra, "label_indices": True})
    tasks = (scene, *ALL_KINDS[1:4])
    (root / "labels.csv").write_text(
        "image,scene,objects,pose,distance\n"
        "000000.png,right, cone ; box ,1;2,3\n"
        "000001.png,,-,, \n"
        "000002.png,2,rock,-4.5e-1;0,0\n"
    )
    loaded = load_folder(root, tasks=tasks)
    assert loaded.targets["scene"].tolist() == [2, MISSING_CLASS, 2]
    assert np.array_equal(loaded.targets["objects"], np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], np.float32))
    assert np.array_equal(loaded.targets["pose"], np.array([[1, 2], [np.nan] * 2, [-0.45, 0]], np.float32), True)
    assert loaded.targets["distance"].shape == (3, 1) and np.isnan(loaded.targets["distance"][1, 0])


def test_a_segmentation_column_lets_images_go_without_a_mask(root: Path, dataset: ArrayDataset) -> None:
    (root / "masks" / "000001.png").unlink()
    labels = (root / "labels.csv").read_text().splitlines()
    rows = [labels[0] + ",segmentation"] + [
        f"{line},{'' if line.startswith('000001') else line.split(',')[0]}" for line in labels[1:]
    ]
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    loaded = load_folder(root)
    assert (loaded.targets["segmentation"][1] == IGNORE_PIXEL).all()
    assert np.array_equal(loaded.targets["segmentation"][2:], dataset.targets["segmentation"][2:])
    (root / "labels.csv").write_text("\n".join(rows).replace("000002.png,right,000002.png", "000002.png,right,x.png"))
    with pytest.raises(DataError, match=r"1 masks listed in .*labels\.csv missing from .*masks \(first: x\.png\)"):
        load_folder(root)


# --- manifests ------------------------------------------------------------------------------------------


def _manifest_rows(root: Path) -> list[list[str]]:
    """labels.csv of a written dataset as manifest rows: paths relative to the dataset folder."""
    lines = [line.split(",") for line in (root / "labels.csv").read_text().splitlines()]
    header, rows = lines[0], lines[1:]
    if "segmentation" not in header:
        header, rows = [*header, "segmentation"], [[*row, row[0]] for row in rows]
    at = header.index("segmentation")
    return [header] + [[f"images/{r[0]}", *r[1:at], f"masks/{r[at]}" if r[at] else "", *r[at + 1 :]] for r in rows]


def test_csv_manifest_round_trip(tmp_path: Path, mixed: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "mixed", mixed, ALL_KINDS)
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(",".join(row) for row in _manifest_rows(root)) + "\n")
    _assert_same(load_dataset(manifest), mixed)
    _assert_same(load_manifest(manifest, size=(32, 32)), mixed)
    assert read_tasks(manifest) == ALL_KINDS


def test_json_manifest_round_trip_with_its_own_tasks(tmp_path: Path, mixed: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "data" / "mixed", mixed, ALL_KINDS)
    (root / "tasks.json").unlink()
    samples = []
    for i in range(len(mixed)):
        scene, masks = int(mixed.targets["scene"][i]), mixed.targets["segmentation"][i]
        objects, pose = mixed.targets["objects"][i], mixed.targets["pose"][i]
        sample = {
            "image": f"mixed/images/{i:06d}.png",
            "scene": None if scene < 0 else ALL_KINDS[0].classes[scene],
            "pose": None if np.isnan(pose).all() else [float(v) for v in pose],
            "distance": None if np.isnan(mixed.targets["distance"][i, 0]) else float(mixed.targets["distance"][i, 0]),
            "segmentation": None if (masks == IGNORE_PIXEL).all() else f"mixed/masks/{i:06d}.png",
        }
        if not np.isnan(objects).all():  # an absent key: unlabelled, like null
            sample["objects"] = [name for name, flag in zip(ALL_KINDS[1].classes, objects) if flag]
        samples.append(sample)
    manifest = tmp_path / "data" / "train.json"
    manifest.write_text(json.dumps({"tasks": [t.to_dict() for t in ALL_KINDS], "samples": samples}))
    assert read_tasks(manifest) == ALL_KINDS
    _assert_same(load_dataset(manifest), mixed)
    manifest.write_text(json.dumps(samples))
    with pytest.raises(DataError, match=r"train\.json names no tasks and .*tasks\.json does not exist"):
        load_dataset(manifest)
    assert len(load_dataset(manifest, tasks=ALL_KINDS)) == 6


def test_manifests_allow_several_segmentation_tasks(tmp_path: Path, dataset: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "set", dataset)
    tasks = (*NAVIGATION_TASKS, TaskSpec("coarse", TaskKind.SEGMENTATION, ("a", "b", "c", "d")))
    rows = _manifest_rows(root)
    rows = [[*rows[0], "coarse"]] + [[*row, row[-1] if i % 2 else ""] for i, row in enumerate(rows[1:])]
    (root / "manifest.csv").write_text("\n".join(",".join(row) for row in rows) + "\n")
    loaded = load_dataset(root / "manifest.csv", tasks=tasks)
    assert np.array_equal(loaded.targets["coarse"][1], dataset.targets["segmentation"][1])
    assert (loaded.targets["coarse"][0] == IGNORE_PIXEL).all()


def test_load_dataset_refuses_what_is_neither_folder_nor_manifest(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DataError, match=r"notes\.txt is neither a folder nor a manifest: expected .*\.csv / \.json"):
        load_dataset(tmp_path / "notes.txt")
    with pytest.raises(DataError, match=r"manifest .*gone\.csv does not exist"):
        load_dataset(tmp_path / "gone.csv")


# --- validation of manifests and new cells: one line, the count, the first offenders --------------------


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("objects", "box;tyre", r"2 unknown label names in column 'objects' .*\(first: 'box;tyre' on line 2, "),
        ("pose", "1", r"2 unusable values in column 'pose' .*\(first: '1' on line 2, .*expected 2 finite number"),
        ("distance", "far", r"2 unusable values in column 'distance' .*\(first: 'far' on line 2, "),
        ("distance", "inf", r"first: 'inf' on line 2"),
    ],
)
def test_bad_cells_are_counted(tmp_path: Path, column: str, value: str, expected: str) -> None:
    root = tmp_path / "set"
    write_dataset(root, ArrayDataset(np.zeros((2, 8, 8, 3), np.uint8), {"scene": np.zeros(2, np.int64)}), ALL_KINDS[:1])
    cells = {"objects": "-", "pose": "0;0", "distance": "1", column: value}
    (root / "labels.csv").write_text(
        "image,scene,objects,pose,distance\n"
        + "".join(
            f"{n}.png,left,{cells['objects']},{cells['pose']},{cells['distance']}\n" for n in ("000000", "000001")
        )
    )
    with pytest.raises(DataError) as error:
        load_folder(root, tasks=ALL_KINDS[:4])
    assert re.search(expected, _one_line(error))


def test_manifest_failures_are_one_line_each(tmp_path: Path, dataset: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "set", dataset)
    rows = _manifest_rows(root)
    manifest = root / "manifest.csv"

    def write(rows: list[list[str]]) -> str:
        manifest.write_text("\n".join(",".join(row) for row in rows) + "\n")
        with pytest.raises(DataError) as error:
            load_dataset(manifest)
        return _one_line(error)

    gone = [rows[0]] + [[*r[:2], r[2].replace("masks/", "masks/gone_")] for r in rows[1:]]
    assert re.search(
        r"^6 masks listed in .*manifest\.csv missing from .*\(first: masks/gone_000000\.png, masks/gone_0"
        r"00001\.png, masks/gone_000002\.png, \.\.\.\): expected every listed mask",
        write(gone),
    )
    absent = [
        rows[0],
        ["images/000000.png", "left", ""],
        ["images/nope.png", "left", ""],
        ["images/no.jpg", "left", ""],
    ]
    assert re.search(
        r"^2 images listed in .*missing from .*set \(first: images/nope\.png, images/no\.jpg\)", write(absent)
    )
    assert re.search(r"lacking \['segmentation'\]", write([row[:2] for row in rows]))
    cv2.imwrite(str(root / "masks" / "big.png"), np.zeros((8, 8), np.uint8))
    write_mask(root / "masks" / "big.png", np.zeros((30, 48), np.uint8), 4)
    assert re.search(
        r"1 masks in .* of another size .*\(first: masks/big\.png is 48×30, its image 48×32\)",
        write([rows[0], [*rows[1][:2], "masks/big.png"]]),
    )
    (root / "images" / "000003.png").write_bytes(b"broken")
    assert re.search(r"^1 unreadable images in .*set \(first: images/000003\.png\)", write(rows))


def test_json_manifest_typos_are_named(tmp_path: Path, dataset: ArrayDataset) -> None:
    root = write_dataset(tmp_path / "set", dataset)
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps([{"image": "images/000000.png", "scen": "left", "segmentation": None}]))
    with pytest.raises(DataError, match=r"1 unknown keys in .*\(first: samples\[0\] key 'scen' \(did you mean 'scene'"):
        load_dataset(manifest)
    manifest.write_text(json.dumps({"samples": {"image": "x.png"}}))
    with pytest.raises(DataError, match=r"holds no list of samples"):
        load_dataset(manifest)
    manifest.write_text("[{")
    with pytest.raises(DataError, match=r"manifest\.json is not valid JSON"):
        load_dataset(manifest)


def test_check_against_accepts_missing_markers_and_refuses_half_rows(mixed: ArrayDataset) -> None:
    mixed.check_against(ALL_KINDS)
    pose = mixed.targets["pose"].copy()
    pose[0, 1] = np.nan
    with pytest.raises(DataError, match=r"'pose' has 1 rows partly NaN \(first: row 0\): expected a whole row"):
        ArrayDataset(mixed.images, {**mixed.targets, "pose": pose}).check_against(ALL_KINDS)
    objects = mixed.targets["objects"].copy()
    objects[0, 0] = 2
    with pytest.raises(DataError, match=r"'objects' holds values other than 0 and 1"):
        ArrayDataset(mixed.images, {**mixed.targets, "objects": objects}).check_against(ALL_KINDS)
    scene = mixed.targets["scene"].copy()
    scene[0] = -2
    with pytest.raises(DataError, match=r"class ids -2\.\.3: expected 0\.\.3 .*or -1 where unlabelled"):
        ArrayDataset(mixed.images, {**mixed.targets, "scene": scene}).check_against(ALL_KINDS)


# --- partial labels in losses, metrics and training ------------------------------------------------------


def test_losses_ignore_missing_targets() -> None:
    """Each loss is the plain loss over the labelled part; nothing labelled gives 0 with zero gradients."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    from edgemtl.train.losses import task_loss

    flags = TaskSpec("flags", TaskKind.MULTILABEL, ("a", "b"))
    values = TaskSpec("values", TaskKind.REGRESSION, ("x", "y"))
    huber = TaskSpec("values", TaskKind.REGRESSION, ("x", "y"), extra={"loss": "huber"})
    out = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, MISSING_CLASS, 3, MISSING_CLASS])
    rows = torch.tensor([[1.0, 0.0], [np.nan, np.nan], [0.0, 1.0], [np.nan, np.nan]])
    mask = torch.tensor([[[0, 1], [IGNORE_PIXEL, 3]]], dtype=torch.uint8)  # (1, 2, 2)
    pixels = out.reshape(1, 4, 4)[:, :, [0, 1, 3]]  # (1, C, labelled pixels)
    labelled = [0, 2]
    cases = [
        (NAVIGATION_TASKS[0], out, labels, functional.cross_entropy(out[labelled], labels[labelled])),
        (
            NAVIGATION_TASKS[1],
            out.reshape(1, 4, 2, 2),
            mask,
            functional.cross_entropy(pixels, torch.tensor([[0, 1, 3]])),
        ),
        (flags, out[:, :2], rows, functional.binary_cross_entropy_with_logits(out[labelled, :2], rows[labelled])),
        (values, out[:, :2], rows, functional.mse_loss(out[labelled, :2], rows[labelled])),
        (huber, out[:, :2], rows, functional.huber_loss(out[labelled, :2], rows[labelled])),
    ]
    for task, output, target, expected in cases:
        assert torch.allclose(task_loss(task, output, target), expected), task
        unlabelled = {TaskKind.CLASSIFICATION: MISSING_CLASS, TaskKind.SEGMENTATION: IGNORE_PIXEL}.get(
            task.kind, np.nan
        )
        output = output.clone().requires_grad_(True)
        zero = task_loss(task, output, torch.full_like(target, unlabelled))
        zero.backward()
        assert zero.item() == 0 and torch.equal(output.grad, torch.zeros_like(output))


def test_meters_skip_missing_targets() -> None:
    from edgemtl.metrics import make_meter

    scene, objects, pose, _, segmentation = ALL_KINDS
    meter = make_meter(scene)
    meter.update(np.array([0, 1, 2, 3]), np.array([0, MISSING_CLASS, 2, 0]))
    assert meter.compute()["accuracy"] == pytest.approx(2 / 3)
    meter = make_meter(segmentation)
    meter.update(np.array([[0, 1], [2, 3]]), np.array([[0, IGNORE_PIXEL], [IGNORE_PIXEL, 0]]))
    assert meter.compute()["pixel_accuracy"] == 0.5
    meter = make_meter(objects)
    meter.update(np.array([[1, 0, 1], [1, 1, 1]]), np.array([[1, 0, 1], [np.nan] * 3], np.float32))
    assert meter.compute()["f1_box"] == 1.0 and np.isnan(meter.compute()["f1_cone"])
    meter = make_meter(pose)
    meter.update(np.array([[1.0, 2.0], [5.0, 5.0]]), np.array([[0.0, 0.0], [np.nan, np.nan]], np.float32))
    assert meter.compute()["mae"] == 1.5


def test_a_sample_without_a_mask_still_trains_classification(tmp_path: Path) -> None:
    """Half the frames have no mask: the scene head still gets gradients and training runs to the end."""
    torch = pytest.importorskip("torch")
    from edgemtl.model import create_model
    from edgemtl.train import TrainConfig, train
    from edgemtl.train.losses import task_loss

    data = make_dataset(24, (32, 32), seed=2)
    data.targets["segmentation"][::2] = IGNORE_PIXEL
    model = create_model("nano", NAVIGATION_TASKS)
    outputs = model(torch.randn(4, 3, 32, 32))
    no_masks = torch.full((4, 32, 32), IGNORE_PIXEL, dtype=torch.uint8)
    total = task_loss(NAVIGATION_TASKS[0], outputs["scene"], torch.tensor([0, 1, 2, 3])) + task_loss(
        NAVIGATION_TASKS[1], outputs["segmentation"], no_masks
    )
    total.backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for name, g in grads.items() if "scene" in name)
    assert all(g is None or g.abs().sum() == 0 for name, g in grads.items() if "segmentation" in name)
    config = TrainConfig(input_size=(32, 32), epochs=1, batch_size=8, device="cpu")
    result = train(
        config,
        NAVIGATION_TASKS,
        data.subset(slice(0, 16)),
        data.subset(slice(16, 24)),
        tmp_path,
        progress=False,
        log=lambda _: None,
    )
    assert np.isfinite(result.history[0]["train_loss"]["scene"])
    assert np.isfinite(result.history[0]["train_loss"]["segmentation"])
    assert 0 <= result.best_metrics["scene"]["accuracy"] <= 1


# --- files from other people ------------------------------------------------------------------------------


def test_a_missing_dataset_folder_is_said_not_to_exist(tmp_path: Path) -> None:
    for call in (read_tasks, load_dataset):
        with pytest.raises(DataError, match="does not exist"):
            call(tmp_path / "nowhere")


def test_a_short_labels_row_names_the_file_and_line(root: Path) -> None:
    _rewrite_labels(root, "000001.png,", "000001.png\n#")  # line 3 loses its cell
    (root / "labels.csv").write_text((root / "labels.csv").read_text().replace("\n#", "\n", 1))
    with pytest.raises(DataError) as error:
        load_folder(root)
    message = str(error.value)
    assert "labels.csv line 3 has 1 fields: expected 2" in message and "\n" not in message


@pytest.mark.parametrize("outside", ["../../etc/passwd.png", "/etc/hostname.png", "sub/../../../x.png"])
def test_paths_outside_the_dataset_folder_are_refused_unless_allowed(root: Path, outside: str) -> None:
    _rewrite_labels(root, "000000.png,", f"{outside},")
    with pytest.raises(DataError) as error:
        load_folder(root)
    assert "outside the dataset folder" in str(error.value) and outside in str(error.value)
    assert "--allow-outside-paths" in str(error.value)
    with pytest.raises(DataError, match="missing from"):  # allowed: now it is only a file that is not there
        load_folder(root, allow_outside=True)


def test_an_allowed_outside_path_is_read(tmp_path: Path, root: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (root / "images" / "000000.png").rename(shared / "first.png")
    manifest = root / "manifest.csv"
    manifest.write_text("image,scene,segmentation\n../shared/first.png,left,masks/000000.png\n")
    with pytest.raises(DataError, match="outside the dataset folder"):
        load_dataset(manifest)
    assert len(load_dataset(manifest, allow_outside=True)) == 1


def test_a_manifest_path_outside_its_folder_is_refused(tmp_path: Path, root: Path) -> None:
    manifest = root / "manifest.csv"
    manifest.write_text("image,scene,segmentation\n../secret.png,left,masks/000000.png\n")
    with pytest.raises(DataError, match="outside the dataset folder"):
        load_manifest(manifest)


def test_hidden_files_are_not_calibration_frames(tmp_path: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07")
    assert folder_module.load_frames(folder, (8, 8)).shape == (1, 8, 8, 3)
