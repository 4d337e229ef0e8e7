"""`edgemtl data import`: every format from fixture files in that tool's published format (each writer in
tests/helpers.py says where the format is specified) to the folder format, the class map, joined image
labels, and one clear error per kind of bad input with the destination left absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgemtl.data import load_dataset, read_tasks
from edgemtl.data.check import check_dataset
from edgemtl.data.importers import IMPORTERS, ClassMap, import_dataset
from edgemtl.data.importers.voc import VOC_CLASSES
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.tasks import IGNORE_PIXEL
from tests.helpers import assert_one_line, snapshot
from tests.label_files import (
    fixture_scene,
    write_cityscapes,
    write_coco,
    write_colour_masks,
    write_cvat_masks,
    write_image_labels,
    write_labelme,
)

FRAMES = 6
WRITERS = {
    "cvat": write_cvat_masks,
    "coco": write_coco,
    "labelme": write_labelme,
    "cityscapes": write_cityscapes,
    "colours": write_colour_masks,
}


def _import(format_name: str, src: Path, dst: Path, **options):
    source_files = snapshot(src)
    report = import_dataset(format_name, src, dst, **options)
    assert snapshot(src) == source_files, "importing never changes the source"
    return report


def test_the_cli_lists_every_registered_format():
    from edgemtl.cli.data import FORMATS

    assert set(FORMATS) == set(IMPORTERS)


def test_the_cli_lists_every_take():
    from edgemtl.cli.data import TAKES as CLI_TAKES
    from edgemtl.data.importers import TAKES

    assert CLI_TAKES == TAKES


@pytest.mark.parametrize("format_name", sorted(WRITERS))
def test_each_format_imports_to_a_clean_dataset_with_the_drawn_masks(tmp_path, format_name):
    src = WRITERS[format_name](tmp_path / "src", FRAMES)
    table = None
    if format_name == "cityscapes":
        table = tmp_path / "ids.csv"
        table.write_text("id,class\n0,background\n7,road\n26,car\n")
    options = {"take": "masks"} if format_name == "labelme" else {}  # its car is a rectangle: a box unless painted
    report = _import(format_name, src, tmp_path / "out", table=table, **options)
    assert report.frames == FRAMES
    check = check_dataset(tmp_path / "out")
    assert check.clean and not check.warnings, check.lines()
    data = load_dataset(tmp_path / "out")
    segmentation = read_tasks(tmp_path / "out")[0]
    assert segmentation.classes[1:] == ("road", "car")
    for i, mask in enumerate(data.targets["segmentation"]):
        assert np.array_equal(mask, fixture_scene(i)[1]), f"{format_name} frame {i}"


def test_pascal_voc_palette_masks_their_splits_and_a_class_map_dropping_the_unused(tmp_path):
    src = write_cvat_masks(tmp_path / "voc", FRAMES, labelmap=False)
    unused = [c for c in VOC_CLASSES if c not in ("background", "car")]
    report = _import("voc", src, tmp_path / "out", class_map=ClassMap.parse(tuple(f"{c}=-" for c in unused)))
    assert read_tasks(tmp_path / "out")[0].classes == ("background", "car")
    assert "  aeroplane → dropped (pixels → background)" in report.lines()
    data = load_dataset(tmp_path / "out")
    assert (data.targets["segmentation"][:, 9] == IGNORE_PIXEL).all(), "VOC's 255 border stays unlabelled"
    assert data.info["split"].tolist() == ["train"] * 5 + ["val"], "ImageSets/Segmentation/train.txt and val.txt"


def test_coco_categories_become_image_labels_and_the_map_merges_and_ignores(tmp_path):
    src = write_coco(tmp_path / "coco", FRAMES)
    class_map = ClassMap.parse(("road=ground", "background=sky", "car=255"))
    _import("coco", src, tmp_path / "out", class_map=class_map)
    tasks = read_tasks(tmp_path / "out")
    assert [(t.name, t.classes) for t in tasks] == [("segmentation", ("sky", "ground")), ("categories", ("ground",))]
    data = load_dataset(tmp_path / "out")
    assert np.array_equal(data.targets["segmentation"][0] == IGNORE_PIXEL, fixture_scene(0)[1] == 2)
    assert (data.targets["categories"] == 1).all()


def test_labelme_flags_are_image_labels(tmp_path):
    _import("labelme", write_labelme(tmp_path / "lm", FRAMES), tmp_path / "out", take="masks")
    data = load_dataset(tmp_path / "out")
    assert read_tasks(tmp_path / "out")[1].classes == ("day", "rain")
    assert data.targets["flags"][:, 0].tolist() == [1, 0, 1, 0, 1, 0]
    assert data.targets["flags"][:, 1].tolist() == [1, 0, 0, 1, 0, 0]


def test_cityscapes_default_table_splits_and_groups(tmp_path):
    _import("cityscapes", write_cityscapes(tmp_path / "cs", FRAMES), tmp_path / "out")
    classes = read_tasks(tmp_path / "out")[0].classes
    assert len(classes) == 19 and classes[0] == "road" and "car" in classes
    data = load_dataset(tmp_path / "out")
    assert (data.targets["segmentation"][0][fixture_scene(0)[1] == 0] == IGNORE_PIXEL).all(), "id 0 is void"
    assert data.info["split"].tolist() == ["train"] * 5 + ["val"]
    assert data.info["group"][0] == "aachen_000000" and len(set(data.info["group"])) == 4


def test_image_labels_join_onto_an_import_and_stand_alone(tmp_path):
    src = write_colour_masks(tmp_path / "src", FRAMES)
    labels = write_image_labels(tmp_path / "labels.csv", [f"{i:04d}.png" for i in range(FRAMES)])
    _import("colours", src, tmp_path / "out", labels=labels)
    tasks = {t.name: t for t in read_tasks(tmp_path / "out")}
    assert tasks["scene"].classes == ("left", "right") and tasks["objects"].classes == ("box", "cone")
    assert tasks["speed"].num_outputs == 1 and tasks["pose"].classes == ("x", "y")
    data = load_dataset(tmp_path / "out")
    assert data.targets["scene"].tolist() == [0, 1, 0, 1, 0, 1]
    assert np.allclose(data.targets["pose"][3], [3, 0]) and np.allclose(data.targets["speed"][5], 0.5)
    json_labels = tmp_path / "labels.json"
    json_labels.write_text(json.dumps({f"{i:04d}": {"scene": ["a", "b"][i % 2], "pose": {"x": i}} for i in range(6)}))
    _import("images", src / "images", tmp_path / "plain", labels=json_labels)
    assert [t.name for t in read_tasks(tmp_path / "plain")] == ["scene", "pose"]
    assert check_dataset(tmp_path / "plain").clean


# --- bad input: one line naming the file (and row or polygon) and the fix; no destination ------------------


def _refused(error_type, dst: Path, call, *fragments: str) -> None:
    with pytest.raises(error_type) as error:
        call()
    assert_one_line(error, *fragments)
    assert not dst.exists() and not [p for p in dst.parent.iterdir() if p.name.startswith(f".{dst.name}")]


def test_coco_with_a_missing_image_file(tmp_path):
    src = write_coco(tmp_path / "coco", 3)
    (src / "images" / "0001.jpg").unlink()
    dst = tmp_path / "out"
    _refused(
        DataError,
        dst,
        lambda: import_dataset("coco", src, dst),
        "instances_default.json",
        "image id 2",
        "'0001.jpg'",
        "expected",
    )


def test_coco_with_a_polygon_wholly_outside_the_image(tmp_path):
    src = write_coco(tmp_path / "coco", 3)
    path = src / "annotations" / "instances_default.json"
    document = json.loads(path.read_text())
    document["annotations"][2]["segmentation"] = [[40, 16, 50, 16, 45, 30]]  # the image is 32×32
    path.write_text(json.dumps(document))
    dst = tmp_path / "out"
    _refused(
        DataError,
        dst,
        lambda: import_dataset("coco", src, dst),
        str(path),
        "annotation id 3",
        "polygon 0",
        "wholly outside the 32×32 (height×width) image",
        "fix the shape",
    )


def test_labelme_with_an_unknown_label(tmp_path):
    src = write_labelme(tmp_path / "lm", 3)
    path = src / "0002.json"
    document = json.loads(path.read_text())
    document["shapes"][1]["label"] = "bus"
    path.write_text(json.dumps(document))
    dst = tmp_path / "out"
    _refused(DataError, dst, lambda: import_dataset("labelme", src, dst), str(path), "shape 1", "'bus'", "labels.txt")


def test_a_colour_mask_with_a_colour_not_in_the_table(tmp_path):
    src = write_colour_masks(tmp_path / "src", 3)
    (src / "colors.csv").write_text("class,r,g,b\nsky,0,0,0\nroad,128,64,128\n")
    dst = tmp_path / "out"
    _refused(
        DataError,
        dst,
        lambda: import_dataset("colours", src, dst),
        "0000.png",
        "(0, 0, 142)",
        "colors.csv",
        "add a row",
    )


def test_a_class_map_naming_an_unknown_class(tmp_path):
    src = write_colour_masks(tmp_path / "src", 3)
    dst = tmp_path / "out"
    call = lambda: import_dataset("colours", src, dst, ClassMap.parse(("cars=vehicle",)))  # noqa: E731
    _refused(ConfigError, dst, call, "'cars'", "did you mean 'car'", "sky, road, car")


def test_a_split_column_with_an_unknown_value(tmp_path):
    src = write_colour_masks(tmp_path / "src", 3)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,scene,split\n0000.png,a,train\n0001.png,b,valid\n0002.png,a,val\n")
    dst = tmp_path / "out"
    call = lambda: import_dataset("colours", src, dst, labels=labels)  # noqa: E731
    _refused(DataError, dst, call, str(labels), "'valid' on line 3", "train, val, test")


def test_an_import_destination_that_exists(tmp_path):
    src = write_colour_masks(tmp_path / "src", 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError) as error:
        import_dataset("colours", src, tmp_path / "out")
    assert_one_line(error, str(tmp_path / "out"), "exists", "choose another DST")
    assert snapshot(tmp_path / "out") == {"keep.txt": b"mine"}
