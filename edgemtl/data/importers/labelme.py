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
Without labels.txt the classes are `background` and every label seen, sorted. An image's `flags` that
are true become its image-level labels, a multilabel task `flags`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.files import inside
from edgemtl.errors import DataError

IGNORE_LABEL, BACKGROUND_LABEL = "__ignore__", "_background_"
FLAGS_TASK = "flags"
_LINE_WIDTH = 3


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"labelme file {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DataError(f"{path} is not a labelme file: expected an object with 'shapes' and 'imagePath'")
    return data


def _class_list(src: Path, files: list[Path], table: Path | None) -> tuple[tuple[str, ...], bool]:
    """(classes, from a labels.txt): labels.txt's classes, `__ignore__` left out; else background + labels seen."""
    path = table or src / "labels.txt"
    if path.is_file():
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        classes = ["background" if n == BACKGROUND_LABEL else n for n in names if n != IGNORE_LABEL]
        if not classes:
            raise DataError(f"{path} lists no classes: expected _background_ then one class per line")
        return tuple(classes), True
    seen = {str(s.get("label")) for f in files for s in _read(f)["shapes"] if isinstance(s, dict)}
    return ("background", *sorted(seen - {IGNORE_LABEL, BACKGROUND_LABEL, "background"})), False


def _paint(mask: np.ndarray, shape: dict[str, Any], value: int, where: str) -> None:
    kind = shape.get("shape_type") or "polygon"
    try:
        points = np.asarray(shape.get("points"), dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise DataError(f"{where} has points {str(shape.get('points'))[:40]}: expected [[x, y], ...]") from None
    pixels = np.round(points).astype(np.int32)
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "line": 2, "linestrip": 2, "point": 1}
    if kind not in needed:
        raise DataError(f"{where} is a {kind!r} shape: expected one of {', '.join(needed)}")
    if len(points) < needed[kind]:
        raise DataError(f"{where} is a {kind} of {len(points)} points: expected at least {needed[kind]}")
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


def _samples(src: Path, files: list[Path], classes: tuple[str, ...], listed: bool) -> Iterator[SourceSample]:
    for path in files:
        data = _read(path)
        image = _image(path, data, src)
        height, width = image.shape[:2] if isinstance(image, np.ndarray) else cv2.imread(str(image)).shape[:2]
        mask = np.zeros((height, width), dtype=np.int32)
        for index, shape in enumerate(data["shapes"]):
            label = str(shape.get("label")) if isinstance(shape, dict) else ""
            label = "background" if label == BACKGROUND_LABEL else label
            where = f"{path} shape {index} ({label!r})"
            if label != IGNORE_LABEL and label not in classes:
                fix = "add it to labels.txt or relabel the shape" if listed else "expected a label"
                raise DataError(f"{where} has a label not in the class list ({', '.join(classes)}): {fix}")
            _paint(mask, shape, -1 if label == IGNORE_LABEL else classes.index(label), where)
        flags = data.get("flags") if isinstance(data.get("flags"), dict) else {}
        name = "_".join(path.relative_to(src).with_suffix("").parts)
        yield SourceSample(name, image, mask.astype(np.int64), {FLAGS_TASK: [k for k, on in flags.items() if on]})


def import_labelme(src: Path, table: Path | None = None) -> Source:
    """A folder of labelme JSON files (searched in subfolders too) and their images."""
    if not src.is_dir():
        raise DataError(f"labelme source {src} is not a folder: expected a folder of labelme .json files")
    files = sorted(src.rglob("*.json"))
    if not files:
        raise DataError(f"{src} holds no labelme .json files: expected one per image")
    classes, listed = _class_list(src, files, table)
    flags = dict.fromkeys(k for f in files for k in (_read(f).get("flags") or {}))
    return Source(classes, {FLAGS_TASK: tuple(flags)}, _samples(src, files, classes, listed))
