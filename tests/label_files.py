"""Label files as labelling tools write them (issue 12: each writer names where its format is specified), from
one small scene per frame (`fixture_scene`): the importers' fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

FIXTURE_SIZE = (32, 32)  # (H, W) of the importers' fixture frames
ROAD_RGB, CAR_RGB = (128, 64, 128), (0, 0, 142)  # Cityscapes' colours for road and car


def fixture_scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A BGR frame and its class ids (0 background, 1 road: the lower half, 2 car: a square moving with i)."""
    ids = np.zeros(FIXTURE_SIZE, np.uint8)
    ids[16:] = 1
    x = 2 + 3 * (i % 8)
    ids[10:20, x : x + 8] = 2
    rgb = np.array([(90, 150, 220), ROAD_RGB, CAR_RGB], np.uint8)[ids]
    noise = np.random.default_rng(i).integers(0, 20, (*FIXTURE_SIZE, 3), dtype=np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1] + noise), ids


def _car_box(i: int) -> tuple[int, int, int, int]:
    x = 2 + 3 * (i % 8)
    return x, 10, x + 8, 20  # x0, y0, x1, y1 (exclusive)


def write_cvat_masks(root: Path, count: int, labelmap: bool = True) -> Path:
    """CVAT "Segmentation mask 1.1" (docs.cvat.ai, "Segmentation Mask" export: labelmap.txt, SegmentationClass/
    colour PNGs, ImageSets/Segmentation/default.txt, JPEGImages/); labelmap=False: Pascal VOC 2012 (palette PNGs
    of class ids, the devkit's ImageSets/Segmentation/train.txt and val.txt)."""
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i:03d}" for i in range(count)]
    colours = np.array([(0, 0, 0), ROAD_RGB, CAR_RGB], np.uint8)
    for i, name in enumerate(names):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "JPEGImages" / f"{name}.png"), image)
        if labelmap:
            Image.fromarray(colours[ids]).save(root / "SegmentationClass" / f"{name}.png")
        else:  # VOC: indices 0 background, 7 car (VOC's order), 255 on the object's border
            voc = np.where(ids == 2, 7, 0).astype(np.uint8)
            voc[9, :] = 255
            mask = Image.frombytes("P", (voc.shape[1], voc.shape[0]), voc.tobytes())
            mask.putpalette([v for i in range(256) for v in (i, i, i)])
            mask.save(root / "SegmentationClass" / f"{name}.png")
    if labelmap:
        (root / "labelmap.txt").write_text(
            "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n"
        )
        (root / "ImageSets/Segmentation/default.txt").write_text("\n".join(names) + "\n")
    else:
        cut = count - max(1, count // 4)
        (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:cut]) + "\n")
        (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(names[cut:]) + "\n")
    return root


def write_coco(root: Path, count: int) -> Path:
    """COCO instances (cocodataset.org/#format-data): polygons for the road, an uncompressed RLE (iscrowd 1,
    column-major run lengths from 0) for each car, images/ beside annotations/instances_default.json (CVAT's
    COCO 1.0 export layout)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), image)
        images.append({"id": i + 1, "file_name": f"{i:04d}.jpg", "width": 32, "height": 32})
        road = [[0, 16, 32, 16, 32, 32, 0, 32]]
        annotations.append(
            {
                "id": 2 * i + 1,
                "image_id": i + 1,
                "category_id": 3,
                "segmentation": road,
                "area": 512.0,
                "bbox": [0, 16, 32, 16],
                "iscrowd": 0,
            }
        )
        car = (ids == 2).astype(np.uint8).ravel(order="F")
        changes = np.flatnonzero(np.diff(np.concatenate([[0], car, [2]])))
        counts = np.diff(np.concatenate([[0], changes])).tolist()
        x0, y0, x1, y1 = _car_box(i)
        annotations.append(
            {
                "id": 2 * i + 2,
                "image_id": i + 1,
                "category_id": 7,
                "segmentation": {"counts": counts, "size": [32, 32]},
                "area": 80.0,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 1,
            }
        )
    categories = [{"id": 3, "name": "road", "supercategory": ""}, {"id": 7, "name": "car", "supercategory": ""}]
    document = {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / "instances_default.json").write_text(json.dumps(document))
    return root


def write_labelme(root: Path, count: int) -> Path:
    """labelme JSON (github.com/wkentaro/labelme, labelme/_label_file.py; version 5): polygon and rectangle
    shapes, image-level flags, imagePath beside the file; labels.txt as in labelme's
    examples/semantic_segmentation (__ignore__, _background_, then the classes)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("__ignore__\n_background_\nroad\ncar\n")
    for i in range(count):
        image, _ = fixture_scene(i)
        assert cv2.imwrite(str(root / f"{i:04d}.png"), image)
        x0, y0, x1, y1 = _car_box(i)
        shapes = [
            {
                "label": "road",
                "points": [[0, 16], [31, 16], [31, 31], [0, 31]],
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
            },
            {
                "label": "car",
                "points": [[x0, y0], [x1 - 1, y1 - 1]],
                "group_id": None,
                "description": "",
                "shape_type": "rectangle",
                "flags": {},
            },
        ]
        document = {
            "version": "5.5.0",
            "flags": {"day": i % 2 == 0, "rain": i % 3 == 0},
            "shapes": shapes,
            "imagePath": f"{i:04d}.png",
            "imageData": None,
            "imageHeight": 32,
            "imageWidth": 32,
        }
        (root / f"{i:04d}.json").write_text(json.dumps(document))
    return root


def write_cityscapes(root: Path, count: int) -> Path:
    """Cityscapes gtFine (cityscapes-dataset.com; cityscapesScripts' labels.py ids: 7 road, 26 car, 0 unlabeled):
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png beside leftImg8bit/... ."""
    for i in range(count):
        split, city = ("val", "bonn") if i >= count - max(1, count // 4) else ("train", "aachen")
        name = f"{city}_{i // 2:06d}_{i:06d}"
        for folder in ("gtFine", "leftImg8bit"):
            (root / folder / split / city).mkdir(parents=True, exist_ok=True)
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"), image)
        label_ids = np.array([0, 7, 26], np.uint8)[ids]
        Image.fromarray(label_ids).save(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png")
    return root


def write_colour_masks(root: Path, count: int) -> Path:
    """Plain RGB colour masks: images/, masks/<stem>.png and colors.csv (class,r,g,b), edgemtl's documented
    colour layout (docs/data.md, "RGB colour masks")."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    (root / "colors.csv").write_text("class,r,g,b\nsky,0,0,0\nroad,128,64,128\ncar,0,0,142\n")
    colours = np.array([(0, 0, 0), ROAD_RGB, CAR_RGB], np.uint8)
    for i in range(count):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "images" / f"{i:04d}.png"), image)
        Image.fromarray(colours[ids]).save(root / "masks" / f"{i:04d}.png")
    return root


def write_image_labels(path: Path, names: list[str]) -> Path:
    """Image-level labels as a CSV (docs/data.md, "image-level labels"): a class, labels joined by ';', a
    number, and named values as pose.x / pose.y columns."""
    rows = ["image,scene,objects,speed,pose.x,pose.y"]
    for i, name in enumerate(names):
        objects = ["cone;box", "-", "box"][i % 3]
        rows.append(f"{name},{['left', 'right'][i % 2]},{objects},{i / 10:g},{i % 4},{-i % 3}")
    path.write_text("\n".join(rows) + "\n")
    return path
