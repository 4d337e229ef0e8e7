"""Issue 22, item 3: box labels as people have them → boxes/<stem>.json and a `detection` task.

Every format is read from fixtures written in its tool's published format (tests/data/tool_formats.py),
each specified at the URL in SPECS. The imported dataset is read back by the dataset loader (tasks.json as
TaskSpecs, boxes/ through its box rules), so what an import writes is what training reads.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from edgemtl.data.boxes import MAX_FILE_BOXES, fit_boxes, parse_box_file
from edgemtl.data.folder import load_folder, read_tasks
from edgemtl.data.importers import import_dataset
from edgemtl.data.importers.boxes import BoxCounts, detection_task, fit_box, write_boxes
from edgemtl.errors import DataError
from edgemtl.kinds.boxes import objects_of
from edgemtl.tasks import TaskKind, TaskSpec
from tests.data.tool_formats import (
    FRAMES,
    expected_boxes,
    write_cvat_images,
    write_labelme2coco,
    write_labelme2voc,
    write_labelme_shapes,
    write_yolo,
)
from tests.helpers import assert_one_line, assert_one_line_error, invoke, snapshot

SPECS = {  # where each format is specified
    "coco": "https://cocodataset.org/#format-data",
    "voc": "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/htmldoc/devkit_doc.html",
    "labelme": "https://github.com/wkentaro/labelme/blob/main/labelme/_label_file.py",
    "cvat": "https://docs.cvat.ai/docs/dataset_management/formats/format-cvat/",
    "yolo": "https://docs.ultralytics.com/datasets/detect/",
}
SOURCES = {  # case → (format, writer, the detection task's classes)
    "coco": ("coco", write_labelme2coco, ["car", "cone"]),
    "voc-labelme2voc": ("voc", lambda r: write_labelme2voc(r, masks=False), ["road", "car", "cone"]),
    "voc-no-class-list": ("voc", lambda r: _without(write_labelme2voc(r, masks=False), "class_names.txt"), None),
    "labelme": ("labelme", write_labelme_shapes, ["car", "cone"]),
    "cvat": ("cvat", write_cvat_images, ["car", "cone"]),
    "yolo-data-yaml": ("yolo", write_yolo, ["car", "cone"]),
    "yolo-classes-txt": ("yolo", lambda r: write_yolo(r, yaml=False), ["car", "cone"]),
    "yolo-roboflow": ("yolo", lambda r: write_yolo(r, roboflow=True), ["car", "cone"]),
}


def _without(root: Path, name: str) -> Path:
    (root / name).unlink()
    return root


def read_back(root: Path) -> tuple[TaskSpec, list[list[dict] | None]]:
    """(the detection task of tasks.json, each image's boxes in labels.csv order; None where not labelled),
    read by the dataset loader at the images' own size."""
    task = next(t for t in read_tasks(root) if t.kind is TaskKind.DETECTION)
    targets = load_folder(root).targets[task.name]
    return task, [None if np.isnan(target[0, 0]) else _named(task, objects_of(target)) for target in targets]


def _named(task: TaskSpec, rows: np.ndarray) -> list[dict]:
    return [{"class": task.classes[int(c)], "box": [float(v) for v in box]} for c, *box in rows]


@pytest.mark.parametrize("case", sorted(SOURCES))
def test_each_format_imports_its_boxes_clipped_dropped_and_counted(tmp_path, case):
    format_name, writer, classes = SOURCES[case]
    src = writer(tmp_path / "src")
    before = snapshot(src)
    report = import_dataset(format_name, src, tmp_path / "out")
    assert snapshot(src) == before, f"the {SPECS[format_name]} source is never changed"
    task, boxes = read_back(tmp_path / "out")
    assert task == TaskSpec("objects", TaskKind.DETECTION, tuple(classes or ["car", "cone"]))
    assert task in report.tasks and "  objects (detection): " + ", ".join(task.classes) in report.lines()
    assert boxes == [expected_boxes(i) for i in range(FRAMES)], "frame 3 is labelled with no objects: []"
    assert (report.boxes.kept, report.boxes.clipped, report.boxes.dropped) == (4, 1, 1)
    line = "boxes: 4 kept, 1 clipped (partly outside their image), 1 dropped (no area, or under 1 px once clipped)"
    assert line in report.lines()


def test_take_chooses_masks_boxes_or_both(tmp_path):
    src = write_labelme2coco(tmp_path / "coco")
    import_dataset("coco", src, tmp_path / "both", take="both")
    tasks = {t["name"]: t["classes"] for t in json.loads((tmp_path / "both" / "tasks.json").read_text())}
    assert tasks == {"segmentation": ["background", "road", "car", "cone"], "categories": ["road", "car", "cone"],
                     "objects": ["road", "car", "cone"]}  # fmt: skip
    _, boxes = read_back(tmp_path / "both")
    assert boxes[3] == [{"class": "road", "box": [0.0, 16.0, 32.0, 32.0]}], "the road polygon's bbox"
    import_dataset("coco", src, tmp_path / "boxes", take="boxes")
    assert [t["name"] for t in json.loads((tmp_path / "boxes" / "tasks.json").read_text())] == ["objects"]
    assert not (tmp_path / "boxes" / "masks").exists()
    import_dataset("labelme", write_labelme_shapes(tmp_path / "lm"), tmp_path / "lm_boxes", take="boxes")
    _, boxes = read_back(tmp_path / "lm_boxes")
    assert boxes[3] == [{"class": "road", "box": [0.0, 16.0, 32.0, 32.0]}], "the polygon's extent, clipped"


def test_a_class_map_renames_merges_and_drops_box_classes(tmp_path):
    from edgemtl.data.importers import ClassMap

    src = write_cvat_images(tmp_path / "cvat")
    report = import_dataset("cvat", src, tmp_path / "out", ClassMap.parse(("car=vehicle", "cone=-")))
    task, boxes = read_back(tmp_path / "out")
    assert task.classes == ("vehicle",) and boxes[0] == [{"class": "vehicle", "box": [2.0, 10.0, 10.0, 20.0]}]
    assert report.counts == {"polygons partly outside their image, clipped": 4,
                             "boxes of classes the map drops or ignores, left out": 2}  # fmt: skip


# --- bad input: one line naming the file, line or box, and the fix; exit ≠ 0; nothing half-written -------------


def _refused(src_format: str, src: Path, dst: Path, *fragments: str) -> None:
    with pytest.raises(DataError) as error:
        import_dataset(src_format, src, dst)
    assert_one_line(error, *fragments)
    assert not dst.exists() and not [p for p in dst.parent.iterdir() if p.name.startswith(f".{dst.name}")]


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ("0 0.5 0.5 0.2", ("has 4 fields", "expected 'class cx cy w h'", "fix the line")),
        ("0 0.5 0.5 0.2 0.2 0.7", ("has 6 fields", "YOLO segmentation")),
        ("1 1.25 0.5 0.2 0.2", ("cx 1.25, outside [0, 1]", "export normalised coordinates")),
        ("0 0.5 0.5 0.2 -0.1", ("h -0.1, outside [0, 1]",)),
        ("7 0.5 0.5 0.2 0.2", ("class id 7", "data.yaml's names", "0 car, 1 cone", "fix the id")),
        ("car 0.5 0.5 0.2 0.2", ("expected an integer class id",)),
    ],
)
def test_a_bad_yolo_line(tmp_path, line, fragments):
    src = write_yolo(tmp_path / "yolo")
    label = src / "labels" / "train" / "0001.txt"
    label.write_text(label.read_text() + line + "\n")
    _refused("yolo", src, tmp_path / "out", f"{label} line 3", *fragments)  # after the car and the cone


def test_an_unknown_class_name_in_voc_and_cvat(tmp_path):
    src = write_labelme2voc(tmp_path / "voc", masks=False)
    path = src / "Annotations" / "0002.xml"
    path.write_text(path.read_text().replace("<name>car</name>", "<name>truck</name>"))
    _refused("voc", src, tmp_path / "out", str(path), "object 0 ('truck')", "road, car, cone", "relabel it")
    src = write_cvat_images(tmp_path / "cvat")
    path = src / "annotations.xml"
    path.write_text(path.read_text().replace('<box label="car"', '<box label="truck"', 1))
    _refused("cvat", src, tmp_path / "out", str(path), "'truck'", "<meta> does not list", "relabel it")


def test_a_box_wholly_outside_its_image(tmp_path):
    src = write_labelme2coco(tmp_path / "coco")
    path = src / "annotations.json"
    document = json.loads(path.read_text())
    box = next(a for a in document["annotations"] if a["image_id"] == 2 and not a["segmentation"])
    box["bbox"] = [40, 10, 8, 8]
    path.write_text(json.dumps(document))
    fragments = (str(path), "image id 2", f"annotation id {box['id']}", "wholly outside the 32×32 image", "fix the box")
    _refused("coco", src, tmp_path / "out", *fragments)


def test_the_cli_imports_boxes_and_refuses_a_bad_line_in_one_line(tmp_path):
    src = write_yolo(tmp_path / "yolo")
    result = invoke("data", "import", "yolo", src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "objects (detection): car, cone" in result.output and "1 clipped" in result.output
    (src / "labels" / "val").mkdir()
    (src / "labels" / "val" / "0003.txt").write_text("0 0.5 0.5\n")
    assert_one_line_error(invoke("data", "import", "yolo", src, tmp_path / "bad"), "0003.txt line 1", "3 fields")
    assert not (tmp_path / "bad").exists()
    result = invoke("data", "import", "colours", src, tmp_path / "c", "--take", "boxes")
    assert_one_line_error(result, "'colours' has no boxes", "yolo")


# --- the loader's box rules, applied by the import ----------------------------------------------------------


def test_an_import_applies_the_loaders_box_rules_and_the_loader_reads_its_files_back(tmp_path):
    task = detection_task("objects", ["car", "cone"])
    assert task == TaskSpec("objects", TaskKind.DETECTION, ("car", "cone"))
    path = tmp_path / "0001.json"
    drawn = [("cone", (1, 2, 5, 6)), ("car", (-3, 2, 10, 40)), ("car", (4, 4, 4, 9)), ("car", (31.5, 2, 40, 9))]
    counts = BoxCounts()
    kept = [(name, box) for name, corners in drawn if (box := fit_box(corners, 32, 24, "x", counts)) is not None]
    assert kept == [("cone", (1, 2, 5, 6)), ("car", (0, 2, 10, 24))], "no area, or half a pixel once clipped: dropped"
    assert (counts.kept, counts.clipped, counts.dropped) == (2, 2, 2)
    write_boxes(path, drawn)  # as drawn: the loader's rules do to them what the import did
    fitted = fit_boxes(parse_box_file(path, task), (24, 32), path)
    assert (len(fitted.rows), fitted.clipped, fitted.dropped) == (counts.kept, counts.clipped, counts.dropped)
    assert [(task.classes[c], box) for c, box in fitted.rows] == kept
    write_boxes(path, kept)  # as imported: the loader finds nothing left to clip or drop
    fitted = fit_boxes(parse_box_file(path, task), (24, 32), path)
    assert (fitted.clipped, fitted.dropped) == (0, 0) and [box for _, box in fitted.rows] == [b for _, b in kept]
    write_boxes(path, [])
    assert parse_box_file(path, task) == [], "[]: labelled, no objects"


def test_box_rules_refuse_in_one_line(tmp_path):
    task = detection_task("objects", ["car", "cone"])
    path = tmp_path / "0001.json"
    write_boxes(path, [("bus", (1, 1, 2, 2))])
    with pytest.raises(DataError) as error:
        parse_box_file(path, task)
    assert_one_line(error, str(path), "box 0", "'bus'", "car, cone")
    with pytest.raises(DataError) as error:
        write_boxes(path, [("car", (1, 1, 2, 2))] * (MAX_FILE_BOXES + 1))
    assert_one_line(error, path.name, f"at most {MAX_FILE_BOXES}")
    with pytest.raises(DataError) as error:
        fit_box((40, 1, 50, 9), 32, 24, "box file x box 3", BoxCounts())
    assert_one_line(error, "box file x box 3", "wholly outside the 32×24 image", "fix the box")
    with pytest.raises(DataError) as error:
        fit_box((1, float("nan"), 5, 9), 32, 24, "box file x box 4", BoxCounts())
    assert_one_line(error, "box file x box 4", "four finite numbers")


def test_a_class_map_on_a_box_only_source(tmp_path):
    from edgemtl.data.importers import ClassMap
    from edgemtl.errors import ConfigError

    src = write_yolo(tmp_path / "yolo")
    import_dataset("yolo", src, tmp_path / "out", ClassMap.parse(("car=-",)))  # the first class may go: no pixels
    task, boxes = read_back(tmp_path / "out")
    assert task.classes == ("cone",) and boxes[1] == [] and boxes[0][0]["class"] == "cone"
    with pytest.raises(ConfigError) as error:
        import_dataset("yolo", src, tmp_path / "typo", ClassMap.parse(("cars=vehicle",)))
    assert_one_line(error, "'cars'", "did you mean 'car'", "car, cone")


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("rotated", ("box 1 ('car')", "rotated by 30°", "unrotate it")),
        ("z_order", ("frame_000000.png", "z_order is not a number")),
        ("points", ("polygon 0 ('road')", "expected 'x1,y1;x2,y2;…'")),
        ("corner", ("box 1 ('car')", "xtl, ytl, xbr or ybr")),
    ],
)
def test_malformed_cvat_shapes(tmp_path, case, fragments):
    src = write_cvat_images(tmp_path / "cvat")
    path = src / "annotations.xml"
    edits = {
        "rotated": ('<box label="car"', '<box rotation="30" label="car"'),
        "z_order": ('z_order="0"', 'z_order="top"'),
        "points": ('points="-4.00', 'points="a'),
        "corner": ('xtl="2.00"', 'xtl="left"'),
    }
    path.write_text(path.read_text().replace(*edits[case], 1))
    _refused("cvat", src, tmp_path / "out", str(path), *fragments)


def test_an_unreadable_yolo_image(tmp_path):
    src = write_yolo(tmp_path / "yolo")
    (src / "images" / "train" / "0001.jpg").write_bytes(b"not a jpeg")
    _refused("yolo", src, tmp_path / "out", "0001.jpg cannot be read", "expected a PNG, JPEG or BMP")


@pytest.mark.parametrize("roboflow", [False, True])
def test_yolo_splits_come_from_the_folders_data_yaml_names(tmp_path, roboflow):
    import_dataset("yolo", write_yolo(tmp_path / "yolo", roboflow=roboflow), tmp_path / "out")
    with (tmp_path / "out" / "labels.csv").open() as file:
        assert [row["split"] for row in csv.DictReader(file)] == ["train", "train", "train", "val"]


def test_voc_masks_and_boxes_together_and_take_choosing_the_folder(tmp_path):
    src = write_labelme2voc(tmp_path / "voc")
    import_dataset("voc", src, tmp_path / "both")
    tasks = {t["name"]: t["classes"] for t in json.loads((tmp_path / "both" / "tasks.json").read_text())}
    assert tasks == {"segmentation": ["background", "road", "car", "cone"], "objects": ["road", "car", "cone"]}
    assert (tmp_path / "both" / "masks" / "0000.png").is_file() and read_back(tmp_path / "both")[1][3] == []
    import_dataset("voc", src, tmp_path / "masks", take="masks")
    assert not (tmp_path / "masks" / "boxes").exists()
    import_dataset("voc", src, tmp_path / "boxes", take="boxes")
    assert not (tmp_path / "boxes" / "masks").exists()


def test_an_unknown_coco_category_id(tmp_path):
    src = write_labelme2coco(tmp_path / "coco")
    path = src / "annotations.json"
    document = json.loads(path.read_text())
    document["annotations"][1]["category_id"] = 9
    path.write_text(json.dumps(document))
    _refused("coco", src, tmp_path / "out", str(path), "annotation id 1", "category_id 9", "0 background, 1 road")
