"""Issue 24: imports that take what the tools write. Each case is a fixture in the tool's own format
(tests/data/tool_formats.py says where each is specified): a class named `background` or `_background_`
(any case) is the one background class, a polygon partly outside its image is clipped and counted, and
only a polygon wholly outside is an error naming the file and the annotation (nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgemtl.data.importers import import_dataset
from edgemtl.data.importers.classmap import background_first, is_background
from edgemtl.data.importers.polygons import CLIPPED_POLYGONS, clip_polygon
from edgemtl.data.masks import read_mask
from edgemtl.errors import DataError
from tests.data.tool_formats import (
    FRAMES,
    expected_mask,
    write_cvat_images,
    write_labelme2coco,
    write_labelme2voc,
    write_labelme_shapes,
)
from tests.helpers import assert_one_line, snapshot

MASK_SOURCES = {  # format → (writer, options): each yields one background class and the clipped road
    "coco": (write_labelme2coco, {}),
    "voc": (lambda root: write_labelme2voc(root, boxes=False), {}),
    "labelme": (write_labelme_shapes, {}),
    "labelme-no-list": (lambda root: write_labelme_shapes(root, labels_txt=False), {}),
    "cvat": (write_cvat_images, {}),
}


def _tasks(root: Path) -> dict[str, dict]:
    return {t["name"]: t for t in json.loads((root / "tasks.json").read_text())}


@pytest.mark.parametrize("case", sorted(MASK_SOURCES))
def test_one_background_class_and_the_edge_crossing_polygon_clipped(tmp_path, case):
    writer, options = MASK_SOURCES[case]
    src = writer(tmp_path / "src")
    before = snapshot(src)
    report = import_dataset(case.split("-")[0], src, tmp_path / "out", **options)
    assert snapshot(src) == before
    tasks = _tasks(tmp_path / "out")
    classes = tasks["segmentation"]["classes"]
    assert [c for c in classes if is_background(c)] == ["background"] and classes[0] == "background", classes
    assert "road" in classes
    for task in tasks.values():  # no multilabel `categories` holding `_background_`, no background box class
        assert task["name"] == "segmentation" or not any(is_background(c) for c in task["classes"]), task
    road = classes.index("road")
    for mask in sorted((tmp_path / "out" / "masks").glob("*.png")):
        assert np.array_equal(read_mask(mask) == road, expected_mask() == 1), mask.name
    polygons = report.counts.get(CLIPPED_POLYGONS, 0)
    assert polygons == (0 if case == "voc" else FRAMES), report.counts  # VOC has masks, not polygons
    assert case == "voc" or f"{CLIPPED_POLYGONS}: {FRAMES}" in report.lines()


def test_coco_background_category_is_not_a_second_class_nor_an_image_label(tmp_path):
    src = write_labelme2coco(tmp_path / "coco")
    import_dataset("coco", src, tmp_path / "out", take="masks")  # every object painted: car and cone too
    tasks = _tasks(tmp_path / "out")
    assert tasks["segmentation"]["classes"] == ["background", "road", "car", "cone"]
    assert tasks["categories"]["classes"] == ["road", "car", "cone"]


def test_background_names_in_any_case_become_one_class_first():
    assert background_first(["road", "_Background_", "car", "BACKGROUND"], add=False) == (
        ("background", "road", "car"),
        [1, 0, 2, 0],
    )
    assert background_first(["road"], add=True) == (("background", "road"), [1])
    assert background_first(["road"], add=False) == (("road",), [0])


def test_polygon_clipping_keeps_the_part_inside_and_counts_it():
    inside, clipped = clip_polygon(np.array([[2, 2], [10, 2], [10, 10]]), 32, 32, "p")
    assert not clipped and inside.tolist() == [[2, 2], [10, 2], [10, 10]]
    part, clipped = clip_polygon(np.array([[-10, 0], [10, 0], [10, 10], [-10, 10]]), 32, 32, "p")
    assert clipped and part[:, 0].min() == 0 and part[:, 0].max() == 10
    with pytest.raises(DataError) as error:
        clip_polygon(np.array([[40, 0], [50, 0], [45, 10]]), 32, 32, "file.json shape 3")
    assert_one_line(error, "file.json shape 3", "wholly outside the 32×32 (height×width) image", "x 40..50")


def _outside(case: str, src: Path) -> tuple[str, str]:
    """Move one polygon wholly outside the image, in the tool's format; returns (file, annotation) to name."""
    far = [(40.0, 16.0), (60.0, 16.0), (60.0, 30.0)]
    if case == "coco":
        path = src / "annotations.json"
        document = json.loads(path.read_text())
        document["annotations"][0]["segmentation"] = [[v for p in far for v in p]]
        path.write_text(json.dumps(document))
        return str(path), "annotation id 0"
    if case == "labelme":
        path = src / "0002.json"
        document = json.loads(path.read_text())
        document["shapes"][0]["points"] = [list(p) for p in far]
        path.write_text(json.dumps(document))
        return str(path), "shape 0 ('road')"
    path = src / "annotations.xml"
    path.write_text(path.read_text().replace("-4.00,16.00;36.00,16.00;36.00,36.00;-4.00,36.00", "40,16;60,16;60,30", 1))
    return str(path), "polygon 0 ('road')"


@pytest.mark.parametrize("case", ["coco", "labelme", "cvat"])
def test_a_polygon_wholly_outside_its_image_is_one_line_naming_it_and_nothing_is_written(tmp_path, case):
    src = MASK_SOURCES[case][0](tmp_path / "src")
    file, annotation = _outside(case, src)
    with pytest.raises(DataError) as error:
        import_dataset(case, src, tmp_path / "out")
    assert_one_line(error, file, annotation, "wholly outside the 32×32 (height×width) image", "fix the shape")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"], "nothing half-written"


def test_the_cli_reports_the_clipped_polygons_and_refuses_one_outside(tmp_path):
    from tests.helpers import assert_one_line_error, invoke

    src = write_labelme_shapes(tmp_path / "lm")
    result = invoke("data", "import", "labelme", src, tmp_path / "out")
    assert result.exit_code == 0 and f"{CLIPPED_POLYGONS}: {FRAMES}" in result.output, result.output
    file, annotation = _outside("labelme", src)
    result = invoke("data", "import", "labelme", src, tmp_path / "again")
    assert_one_line_error(result, file, annotation, "wholly outside")
    assert not (tmp_path / "again").exists()


def test_colour_and_id_tables_name_the_background_in_any_case(tmp_path):
    from tests.label_files import fixture_scene, write_cityscapes, write_colour_masks

    src = write_colour_masks(tmp_path / "colours", 2)  # colors.csv: sky (0,0,0), road, car
    (src / "colors.csv").write_text("class,r,g,b\nroad,128,64,128\ncar,0,0,142\n_Background_,0,0,0\n")
    import_dataset("colours", src, tmp_path / "out")
    assert _tasks(tmp_path / "out")["segmentation"]["classes"] == ["background", "road", "car"]
    table = tmp_path / "ids.csv"
    table.write_text("id,class\n7,road\n0,BACKGROUND\n26,car\n1,background\n")
    import_dataset("cityscapes", write_cityscapes(tmp_path / "cs", 2), tmp_path / "cs_out", table=table)
    assert _tasks(tmp_path / "cs_out")["segmentation"]["classes"] == ["background", "road", "car"]
    for i in range(2):  # background first after the remap: the pixels keep their classes
        assert np.array_equal(read_mask(tmp_path / "out" / "masks" / f"{i:04d}.png"), fixture_scene(i)[1])
