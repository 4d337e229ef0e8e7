"""Fixtures written in each labelling tool's own published format, from one small scene per frame, for the
importers' edge rules (clipping, the background class) and their boxes.

Each frame (32×32, `fixture_scene`'s pixels) holds: a road polygon that runs past all four borders
(clipped to the lower half), a car box inside the image (frames 0–2), on frame 0 a cone box partly
outside the right border (clipped), on frame 1 a cone box of zero width (dropped); frame 3 has the road
only (labelled, no objects). Every class list starts with labelme's `_background_` (or `Background`).

Where each format is specified:
- COCO: https://cocodataset.org/#format-data ; labelme's converter:
  https://github.com/wkentaro/labelme/blob/main/examples/instance_segmentation/labelme2coco.py
- Pascal VOC XML: http://host.robots.ox.ac.uk/pascal/VOC/voc2012/htmldoc/devkit_doc.html (section 4.2,
  annotation); labelme's converters: https://github.com/wkentaro/labelme/blob/main/examples/
  semantic_segmentation/labelme2voc.py and examples/bbox_detection/labelme2voc.py
- labelme JSON: https://github.com/wkentaro/labelme/blob/main/labelme/_label_file.py
- CVAT for images 1.1: https://docs.cvat.ai/docs/dataset_management/formats/format-cvat/
- YOLO (Ultralytics): https://docs.ultralytics.com/datasets/detect/ (data.yaml, images/ + labels/,
  `class cx cy w h` normalised); classes.txt as darknet and LabelImg write it
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.label_files import fixture_scene

FRAMES = 4
SIZE = 32
ROAD = [(-4.0, 16.0), (36.0, 16.0), (36.0, 36.0), (-4.0, 36.0)]  # crosses every border but the top


def boxes_of(i: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    """The frame's boxes as drawn (x1, y1, x2, y2 in pixels), before the rules."""
    boxes = []
    if i < 3:
        x = 2 + 3 * i
        boxes.append(("car", (float(x), 10.0, x + 8.0, 20.0)))
    if i == 0:
        boxes.append(("cone", (28.0, 2.0, 36.0, 8.0)))  # partly outside: clipped to x2 = 32
    if i == 1:
        boxes.append(("cone", (5.0, 5.0, 5.0, 9.0)))  # no width: dropped
    return boxes


def expected_boxes(i: int) -> list[dict]:
    """What boxes/<stem>.json holds after the rules."""
    out = []
    for name, (x1, y1, x2, y2) in boxes_of(i):
        if x2 > x1 and y2 > y1:
            out.append({"class": name, "box": [x1, y1, min(x2, SIZE), min(y2, SIZE)]})
    return out


def expected_mask() -> np.ndarray:
    """The road, clipped: the lower half."""
    ids = np.zeros((SIZE, SIZE), np.uint8)
    ids[16:] = 1
    return ids


def _image(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), fixture_scene(i)[0])


def write_labelme2coco(root: Path) -> Path:
    """COCO as labelme2coco writes it: annotations.json beside JPEGImages/, category 0 `_background_`, image ids
    from 0, file names relative to the JSON; the car and cone drawn as boxes (segmentation [], as CVAT and
    Roboflow write boxes), the road as a polygon."""
    names = ["_background_", "road", "car", "cone"]
    categories = [{"supercategory": None, "id": k, "name": n} for k, n in enumerate(names)]
    images, annotations = [], []
    for i in range(FRAMES):
        _image(root / "JPEGImages" / f"{i:04d}.jpg", i)
        images.append({"license": 0, "url": None, "file_name": f"JPEGImages/{i:04d}.jpg", "height": SIZE,
                       "width": SIZE, "date_captured": None, "id": i})  # fmt: skip
        road = [v for point in ROAD for v in point]
        annotations.append({"id": len(annotations), "image_id": i, "category_id": 1, "segmentation": [road],
                            "area": 512.0, "bbox": [0, 16, 32, 16], "iscrowd": 0})  # fmt: skip
        for name, (x1, y1, x2, y2) in boxes_of(i):
            annotations.append({"id": len(annotations), "image_id": i, "category_id": names.index(name),
                                "segmentation": [], "area": (x2 - x1) * (y2 - y1),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})  # fmt: skip
    document = {"info": {}, "licenses": [], "type": "instances", "images": images, "annotations": annotations,
                "categories": categories}  # fmt: skip
    (root / "annotations.json").write_text(json.dumps(document))
    return root


def write_labelme2voc(root: Path, masks: bool = True, boxes: bool = True) -> Path:
    """VOC as labelme's converters write it: class_names.txt (`_background_` first), JPEGImages/*.jpg,
    SegmentationClass/*.png palette masks of class ids (semantic_segmentation/labelme2voc.py) and
    Annotations/*.xml boxes (bbox_detection/labelme2voc.py)."""
    names = ["_background_", "road", "car", "cone"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "class_names.txt").write_text("\n".join(names))  # no final newline, as f.writelines writes it
    for i in range(FRAMES):
        _image(root / "JPEGImages" / f"{i:04d}.jpg", i)
        if masks:
            (root / "SegmentationClass").mkdir(exist_ok=True)
            mask = Image.fromarray(expected_mask(), mode="P")
            mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 - 4) * 3)
            mask.save(root / "SegmentationClass" / f"{i:04d}.png")
        if boxes:
            (root / "Annotations").mkdir(exist_ok=True)
            objects = "".join(
                f"<object><name>{name}</name><pose/><truncated/><difficult/><bndbox><xmin>{x1}</xmin>"
                f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                for name, (x1, y1, x2, y2) in boxes_of(i)
            )
            (root / "Annotations" / f"{i:04d}.xml").write_text(
                f"<annotation><folder/><filename>{i:04d}.jpg</filename><database/><annotation/><image/>"
                f"<size><height>{SIZE}</height><width>{SIZE}</width><depth>3</depth></size><segmented/>"
                f"{objects}</annotation>"
            )
    return root


def write_labelme_shapes(root: Path, labels_txt: bool = True) -> Path:
    """labelme JSON files: the road as a polygon, boxes as rectangles; labels.txt as labelme's examples have it
    (`__ignore__`, `_background_`, the classes), or none (then a `Background` shape names the background)."""
    root.mkdir(parents=True, exist_ok=True)
    if labels_txt:
        (root / "labels.txt").write_text("__ignore__\n_background_\nroad\ncar\ncone\n")
    for i in range(FRAMES):
        _image(root / f"{i:04d}.png", i)
        shapes = [{"label": "road", "points": [list(p) for p in ROAD], "group_id": None, "description": "",
                   "shape_type": "polygon", "flags": {}}]  # fmt: skip
        if not labels_txt:  # a background shape under the road: labelme users draw them too
            shapes.insert(0, {"label": "Background", "points": [[0, 0], [31, 0], [31, 15], [0, 15]],
                              "group_id": None, "shape_type": "polygon", "flags": {}})  # fmt: skip
        for name, (x1, y1, x2, y2) in boxes_of(i):
            shapes.append({"label": name, "points": [[x1, y1], [x2, y2]], "group_id": None, "description": "",
                           "shape_type": "rectangle", "flags": {}})  # fmt: skip
        document = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": f"{i:04d}.png",
                    "imageData": None, "imageHeight": SIZE, "imageWidth": SIZE}  # fmt: skip
        (root / f"{i:04d}.json").write_text(json.dumps(document))
    return root


def write_cvat_images(root: Path) -> Path:
    """CVAT for images 1.1: annotations.xml (meta labels `Background`, road, car, cone; a polygon and boxes per
    image) and images/."""
    labels = "".join(
        f"<label><name>{n}</name><color>#000000</color><type>any</type><attributes/></label>"
        for n in ("Background", "road", "car", "cone")
    )
    images = []
    for i in range(FRAMES):
        _image(root / "images" / f"frame_{i:06d}.png", i)
        road = ";".join(f"{x:.2f},{y:.2f}" for x, y in ROAD)
        shapes = [f'<polygon label="road" source="manual" occluded="0" points="{road}" z_order="0"></polygon>']
        shapes += [
            f'<box label="{n}" source="manual" occluded="0" xtl="{x1:.2f}" ytl="{y1:.2f}" xbr="{x2:.2f}" '
            f'ybr="{y2:.2f}" z_order="0"></box>'
            for n, (x1, y1, x2, y2) in boxes_of(i)
        ]
        images.append(
            f'<image id="{i}" name="frame_{i:06d}.png" width="{SIZE}" height="{SIZE}">{"".join(shapes)}</image>'
        )
    (root / "annotations.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><id>1</id>'
        f"<name>road</name><size>{FRAMES}</size><mode>annotation</mode><labels>{labels}</labels></task>"
        f"<dumped>2026-12-06 08:00:00.000000+00:00</dumped></meta>{''.join(images)}</annotations>"
    )
    return root


def write_yolo(root: Path, yaml: bool = True, roboflow: bool = False) -> Path:
    """Ultralytics' layout: data.yaml (names as a mapping), images/{train,val}/ and labels/{train,val}/ (frame 3,
    without objects, has no label file: Ultralytics reads that as no objects); roboflow=True: Roboflow's
    YOLOv8 export (train/images/, valid/images/, data.yaml naming ../train/images, names as a list); or,
    yaml=False, classes.txt with images/ and labels/ flat."""
    root.mkdir(parents=True, exist_ok=True)
    if roboflow:
        (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\nnames: ['car', 'cone']\n")
    elif yaml:
        (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: car\n  1: cone\n")
    else:
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "classes.txt").write_text("car\ncone\n")
    for i in range(FRAMES):
        split = ("train" if i < 3 else "val") if yaml else ""
        image = root / "images" / split / f"{i:04d}.jpg"
        if roboflow:
            image = root / ("train" if i < 3 else "valid") / "images" / f"{i:04d}.jpg"
        _image(image, i)
        lines = [
            f"{['car', 'cone'].index(n)} {(x1 + x2) / 2 / SIZE:.6f} {(y1 + y2) / 2 / SIZE:.6f} "
            f"{(x2 - x1) / SIZE:.6f} {(y2 - y1) / SIZE:.6f}"
            for n, (x1, y1, x2, y2) in boxes_of(i)
        ]
        if lines:
            label = root / "labels" / split / f"{i:04d}.txt"
            if roboflow:
                label = image.parent.parent / "labels" / f"{i:04d}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("\n".join(lines) + "\n")
    return root
