"""labelme: one JSON file per image (github.com/wkentaro/labelme, `labelme/_label_file.py`), rasterised.

    SRC/
      0001.json     {"version": "5.5.0", "flags": {"night": true}, "imagePath": "0001.jpg",
                     "imageData": null or base64, "imageHeight": 480, "imageWidth": 640,
                     "shapes": [{"label": "car", "points": [[x, y], ...], "shape_type": "polygon",
                                 "group_id": null, "flags": {}}]}
      0001.jpg
      labels.txt    optional, labelme's semantic-segmentation convention: `__ignore__`, `_background_`,
                    then one class per line (labelme's examples/semantic_segmentation/labels.txt)

Shapes are painted in file order (a later one on top), as labelme's own labelme2voc does: polygons,
rectangles, circles, lines and line strips (3 px wide), points (a 3 px dot). With labels.txt, a label it
does not list is an error naming the file and the shape; `__ignore__` shapes become unlabelled (255).
Without labels.txt the classes are `background` and every label seen, sorted. A label `background` or
`_background_` (any case) is the background class. A shape crossing the image's border is clipped (and
counted); one wholly outside is an error. An image's `flags` that are true become its image-level labels,
a multilabel task `flags`.

Rectangles are boxes (labelme's bbox_detection/labelme2voc takes them so): with `--take auto` they
become the detection task `objects` and the other shapes the mask; `--take masks` paints rectangles too
(as the semantic-segmentation labelme2voc does), `boxes` takes every shape's extent, `both` does both.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgemtl.data.importers.base import Source, SourceBox, SourceSample, routes
from edgemtl.data.importers.boxes import Box
from edgemtl.data.importers.classmap import BACKGROUND, background_first, is_background
from edgemtl.data.importers.files import inside
from edgemtl.data.importers.polygons import CLIPPED_POLYGONS, check_extent, clip_polygon
from edgemtl.errors import DataError
from edgemtl.jsonfile import read_json

IGNORE_LABEL = "__ignore__"
FLAGS_TASK = "flags"
CLIPPED_SHAPES = "lines, circles and points partly outside their image, clipped"
_LINE_WIDTH = 3


def _read(path: Path) -> dict[str, Any]:
    data = read_json(path, "labelme file", "expected an object with 'shapes' and 'imagePath'")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"{path} is not a labelme file: expected an object with 'shapes' and 'imagePath'")
    return data


def _class_list(src: Path, files: list[Path], table: Path | None) -> tuple[tuple[str, ...], bool]:
    """(classes, from a labels.txt): labels.txt's classes, `__ignore__` left out; else background + labels seen.

    A label named `background` or `_background_` (any case) is the one background class, first."""
    path = table or src / "labels.txt"
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        listed = [n for n in names if n != IGNORE_LABEL]
        if not listed:
            raise DataError(f"{path} lists no classes: expected _background_ then one class per line")
        return background_first(listed, add=False)[0], True
    seen = {_label(s) for f in files for s in _read(f)["shapes"] if isinstance(s, dict)}
    return (BACKGROUND, *sorted(seen - {IGNORE_LABEL, BACKGROUND})), False


def _label(shape: Any) -> str:
    label = str(shape.get("label")) if isinstance(shape, dict) else ""
    return BACKGROUND if is_background(label) else label


def _points(shape: dict[str, Any], where: str) -> tuple[str, np.ndarray]:
    """(shape type, (N, 2) points), checked for the type's number of points."""
    kind = shape.get("shape_type") or "polygon"
    try:
        points = np.asarray(shape.get("points"), dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise DataError(f"{where} has points {str(shape.get('points'))[:40]}: expected [[x, y], ...]") from None
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "line": 2, "linestrip": 2, "point": 1}
    if kind not in needed:
        raise DataError(f"{where} is a {kind!r} shape: expected one of {', '.join(needed)}")
    if len(points) < needed[kind]:
        raise DataError(f"{where} is a {kind} of {len(points)} points: expected at least {needed[kind]}")
    return kind, points


def _extent(kind: str, points: np.ndarray) -> Box:
    """The box around a shape: a rectangle's two corners, a circle's centre ± radius, else the points."""
    if kind == "circle":
        radius = float(np.hypot(*(points[1] - points[0])))
        (cx, cy) = points[0]
        return cx - radius, cy - radius, cx + radius, cy + radius
    (x1, y1), (x2, y2) = points[:2].min(axis=0), points[:2].max(axis=0)
    if kind != "rectangle":
        (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def _paint(mask: np.ndarray, kind: str, points: np.ndarray, value: int, where: str, counts: Counter[str]) -> None:
    """Paint one shape as labelme2voc does; a polygon crossing the border is clipped and counted."""
    height, width = mask.shape
    if kind == "polygon":
        points, clipped = clip_polygon(points, width, height, where)
    else:
        x1, y1, x2, y2 = _extent(kind, points)
        clipped = check_extent(np.array([[x1, y1], [x2, y2]]), width, height, where)
    counts[CLIPPED_POLYGONS if kind == "polygon" else CLIPPED_SHAPES] += clipped
    pixels = np.round(points).astype(np.int32)
    if kind == "polygon":
        cv2.fillPoly(mask, [pixels], value)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = pixels[0], pixels[1]
        cv2.rectangle(mask, (int(min(x0, x1)), int(min(y0, y1))), (int(max(x0, x1)), int(max(y0, y1))), value, -1)
    elif kind == "circle":
        radius = round(float(np.hypot(*(points[1] - points[0]))))
        cv2.circle(mask, tuple(int(v) for v in pixels[0]), radius, value, -1)
    elif kind == "point":
        cv2.circle(mask, tuple(int(v) for v in pixels[0]), _LINE_WIDTH // 2 + 1, value, -1)
    else:
        cv2.polylines(mask, [pixels], False, value, _LINE_WIDTH)


def _image(path: Path, data: dict[str, Any], src: Path) -> Path | np.ndarray:
    relative = data.get("imagePath")
    if isinstance(relative, str) and relative:
        image = inside(src, str(Path(path.parent.relative_to(src)) / relative), str(path))
        if image.is_file():
            return image
    if isinstance(data.get("imageData"), str):
        pixels = cv2.imdecode(np.frombuffer(base64.b64decode(data["imageData"]), np.uint8), cv2.IMREAD_COLOR)
        if pixels is not None:
            return pixels
    raise DataError(f"{path} names image {relative!r}, which is not beside it, and holds no imageData: copy it there")


def _samples(
    src: Path, files: list[Path], classes: tuple[str, ...], listed: bool, take: str, source: Source
) -> Iterator[SourceSample]:
    for path in files:
        data = _read(path)
        image = _image(path, data, src)
        height, width = image.shape[:2] if isinstance(image, np.ndarray) else cv2.imread(str(image)).shape[:2]
        mask = np.zeros((height, width), dtype=np.int32)
        boxes: list[SourceBox] | None = [] if source.box_classes is not None else None
        for index, shape in enumerate(data["shapes"]):
            label = _label(shape)
            where = f"{path} shape {index} ({label!r})"
            if label != IGNORE_LABEL and label not in classes:
                fix = "add it to labels.txt or relabel the shape" if listed else "expected a label"
                raise DataError(f"{where} has a label not in the class list ({', '.join(classes)}): {fix}")
            kind, points = _points(shape, where)
            paint, box = routes(kind == "rectangle", take)
            if paint and source.classes is not None:
                value = -1 if label == IGNORE_LABEL else source.classes.index(label)
                _paint(mask, kind, points, value, where, source.counts)
            if box and boxes is not None and label not in (IGNORE_LABEL, BACKGROUND):
                boxes.append(SourceBox(label, _extent(kind, points), where))
        flags = data.get("flags") if isinstance(data.get("flags"), dict) else {}
        name = "_".join(path.relative_to(src).with_suffix("").parts)
        labels = {FLAGS_TASK: [k for k, on in flags.items() if on]}
        yield SourceSample(name, image, mask.astype(np.int64), labels, boxes=boxes)


def _routed(files: list[Path], take: str) -> tuple[set[str], set[str]]:
    """(labels of shapes painted, labels of shapes taken as boxes)."""
    painted, boxed = set(), set()
    for path in files:
        for shape in _read(path)["shapes"]:
            if isinstance(shape, dict):
                paint, box = routes((shape.get("shape_type") or "polygon") == "rectangle", take)
                if paint:
                    painted.add(_label(shape))
                if box:
                    boxed.add(_label(shape))
    return painted, boxed - {IGNORE_LABEL, BACKGROUND}


def import_labelme(src: Path, table: Path | None = None, take: str = "auto") -> Source:
    """A folder of labelme JSON files (searched in subfolders too) and their images."""
    if not src.is_dir():
        raise DataError(f"labelme source {src} is not a folder: expected a folder of labelme .json files")
    files = sorted(src.rglob("*.json"))
    if not files:
        raise DataError(f"{src} holds no labelme .json files: expected one per image")
    classes, listed = _class_list(src, files, table)
    painted, boxed = _routed(files, take)
    mask_classes = tuple(c for c in classes if c in painted or c not in boxed or c == BACKGROUND)
    box_classes = tuple(c for c in classes if (c in boxed or c not in painted) and c != BACKGROUND) if boxed else None
    if not painted and boxed:
        mask_classes = None
    flags = dict.fromkeys(k for f in files for k in (_read(f).get("flags") or {}))
    source = Source(mask_classes, {FLAGS_TASK: tuple(flags)}, iter(()), box_classes=box_classes)
    source.samples = _samples(src, files, classes, listed, take, source)
    return source
