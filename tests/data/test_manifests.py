"""Manifests and partial labels: every task kind through the folder and the CSV / JSON manifests, missing
labels skipped by losses and meters, bad cells counted, and paths kept inside the dataset's folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import edgemtl.data.folder as folder_module
from edgemtl.data import (
    ArrayDataset,
    load_dataset,
    load_folder,
    load_manifest,
    make_dataset,
    read_tasks,
    write_dataset,
    write_mask,
)
from edgemtl.errors import DataError
from edgemtl.tasks import IGNORE_PIXEL, MISSING_CLASS, NAVIGATION_TASKS, TaskKind, TaskSpec
from tests.helpers import assert_same_dataset, rewrite_labels, train_split

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
    assert_same_dataset(load_folder(root), mixed)
    assert_same_dataset(load_dataset(root), mixed)


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
    assert_same_dataset(load_dataset(manifest), mixed)
    assert_same_dataset(load_manifest(manifest, size=(32, 32)), mixed)
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
    assert_same_dataset(load_dataset(manifest), mixed)
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
        r"1 masks in .* of another size .*\(first: masks/big\.png is 30×48, its image 32×48\)",
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
    from edgemtl.train import TrainConfig
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
    result = train_split(config, NAVIGATION_TASKS, data, (16, 24), tmp_path)
    assert np.isfinite(result.history[0]["train_loss"]["scene"])
    assert np.isfinite(result.history[0]["train_loss"]["segmentation"])
    assert 0 <= result.best_metrics["scene"]["accuracy"] <= 1


# --- files from other people ------------------------------------------------------------------------------


def test_a_missing_dataset_folder_is_said_not_to_exist(tmp_path: Path) -> None:
    for call in (read_tasks, load_dataset):
        with pytest.raises(DataError, match="does not exist"):
            call(tmp_path / "nowhere")


def test_a_short_labels_row_names_the_file_and_line(root: Path) -> None:
    rewrite_labels(root, "000001.png,", "000001.png\n#")  # line 3 loses its cell
    (root / "labels.csv").write_text((root / "labels.csv").read_text().replace("\n#", "\n", 1))
    with pytest.raises(DataError) as error:
        load_folder(root)
    message = str(error.value)
    assert "labels.csv line 3 has 1 fields: expected 2" in message and "\n" not in message


@pytest.mark.parametrize("outside", ["../../etc/passwd.png", "/etc/hostname.png", "sub/../../../x.png"])
def test_paths_outside_the_dataset_folder_are_refused_unless_allowed(root: Path, outside: str) -> None:
    rewrite_labels(root, "000000.png,", f"{outside},")
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
