"""CVAT for images 1.1 (docs.cvat.ai/docs/dataset_management/formats/format-cvat/): one annotations.xml for
a task's frames, its polygons rasterised into the mask and its boxes the detection task.

    SRC/                                   or SRC = annotations.xml itself
      annotations.xml   <annotations><version>1.1</version>
                          <meta>… <labels><label><name>road</name>…</label>…</labels> …</meta>
                          <image id="0" name="frame_000.png" width="640" height="480">
                            <polygon label="road" points="0.0,240.0;640.0,240.0;…" z_order="0"/>
                            <box label="car" xtl="12.0" ytl="40.5" xbr="80.0" ybr="96.0" z_order="0"/>
                          </image> …
      images/<name>     the frames (also looked for beside annotations.xml)

Without annotations.xml the folder is read as CVAT's "Segmentation mask 1.1" export (edgemtl.data.
importers.voc). Polygons are painted in z_order, then file order; a label `background` or `_background_`
(any case) is the background class. With `--take auto` polygons go to the mask and boxes to the
detection task `objects`. Other shapes (polylines, points, ellipses, brush masks, skeletons) are left
out and counted; a rotated box is an error (its corners are not a box).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

from edgemtl.data.importers.base import Source, SourceBox, SourceSample, routes
from edgemtl.data.importers.boxes import Box
from edgemtl.data.importers.classmap import BACKGROUND, background_first, is_background
from edgemtl.data.importers.files import inside, read_xml, stem_of
from edgemtl.data.importers.polygons import CLIPPED_POLYGONS, clip_polygon
from edgemtl.data.importers.voc import import_voc
from edgemtl.errors import DataError

_SHAPES = ("polygon", "box")
LEFT_OUT = "CVAT shapes other than polygons and boxes, left out"


def _label(shape: ElementTree.Element) -> str:
    label = (shape.get("label") or "").strip()
    return BACKGROUND if is_background(label) else label


def _points(shape: ElementTree.Element, where: str) -> np.ndarray:
    try:
        points = np.array([[float(v) for v in pair.split(",")] for pair in (shape.get("points") or "").split(";")])
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise ValueError
    except ValueError:
        points = None
    if points is None:
        raise DataError(f"{where} has points {str(shape.get('points'))[:40]!r}: expected 'x1,y1;x2,y2;…', 3 or more")
    return points


def _box(shape: ElementTree.Element, where: str) -> Box:
    try:
        corners = tuple(float(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{where} lacks a number in xtl, ytl, xbr or ybr: expected all four, in pixels") from None
    try:
        rotation = float(shape.get("rotation") or 0)
    except ValueError:
        rotation = float("nan")
    if rotation % 360:
        raise DataError(f"{where} is rotated by {shape.get('rotation')}°: expected an upright box; unrotate it")
    return corners  # type: ignore[return-value]


def _shapes(image: ElementTree.Element, where: str) -> list[tuple[int, ElementTree.Element]]:
    """(index in the file, shape) of the image's polygons and boxes in painting order: z_order, then file order."""
    shapes = list(enumerate(s for s in image if s.tag in _SHAPES))
    try:
        return sorted(shapes, key=lambda item: float(item[1].get("z_order") or 0))
    except ValueError:
        raise DataError(f"{where} has a shape whose z_order is not a number: expected integers") from None


def _samples(
    root: ElementTree.Element, path: Path, roots: list[Path], take: str, source: Source
) -> Iterator[SourceSample]:
    for image in root.iter("image"):
        where = f"CVAT file {path}: image {image.get('name')!r}"
        name = image.get("name") or ""
        found = next((p for p in (inside(r, name, where) for r in roots) if p.is_file()), None)
        if found is None:
            raise DataError(f"{where} is not in {' or '.join(map(str, roots))}: export the task with its images")
        try:
            height, width = int(image.get("height") or ""), int(image.get("width") or "")
        except ValueError:
            raise DataError(f"{where} lacks its width or height: expected both, in pixels") from None
        source.counts[LEFT_OUT] += sum(1 for s in image if s.tag not in (*_SHAPES, "tag", "attribute"))
        mask = np.zeros((height, width), np.int32) if source.classes is not None else None
        boxes: list[SourceBox] | None = [] if source.box_classes is not None else None
        for index, shape in _shapes(image, where):
            label = _label(shape)
            at = f"{where} {shape.tag} {index} ({label!r})"
            box = _box(shape, at) if shape.tag == "box" else None
            paint, take_box = routes(box is not None, take)
            if paint and mask is not None:
                x1, y1, x2, y2 = box or (0, 0, 0, 0)
                points = _points(shape, at) if box is None else np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
                points, clipped = clip_polygon(points, width, height, at)
                source.counts[CLIPPED_POLYGONS] += clipped
                cv2.fillPoly(mask, [np.round(points).astype(np.int32)], source.classes.index(label))
            if take_box and boxes is not None and label != BACKGROUND:
                if box is None:
                    points = _points(shape, at)
                    box = (*points.min(axis=0).tolist(), *points.max(axis=0).tolist())
                boxes.append(SourceBox(label, box, at))
        sample_mask = mask.astype(np.int64) if mask is not None else None
        yield SourceSample(stem_of(name), found, sample_mask, boxes=boxes)


def _classes(root: ElementTree.Element, path: Path, take: str) -> tuple[tuple | None, tuple | None]:
    """(mask classes, background first; box classes), each None when no shape goes there."""
    meta = root.find("meta")
    labels = meta.iter("label") if meta is not None else iter(())
    declared = [name.strip() for name in (label.findtext("name") for label in labels) if name and name.strip()]
    painted, boxed = set(), set()
    for image in root.iter("image"):
        for shape in image:
            if shape.tag in _SHAPES:
                paint, box = routes(shape.tag == "box", take)
                if paint:
                    painted.add(_label(shape))
                if box:
                    boxed.add(_label(shape))
    names = list(dict.fromkeys([BACKGROUND if is_background(n) else n for n in declared]))
    unknown = sorted((painted | boxed) - set(names) - {BACKGROUND})
    if declared and unknown:
        raise DataError(f"CVAT file {path} draws label {unknown[0]!r}, which its <meta> does not list: relabel it")
    names = names or sorted(painted | boxed)
    mask_classes = background_first([n for n in names if n in painted or n not in boxed], add=True)[0]
    box_classes = tuple(n for n in names if (n in boxed or n not in painted) and n != BACKGROUND)
    return (mask_classes if painted or not boxed else None), (box_classes if boxed else None)


def import_cvat(src: Path, take: str = "auto") -> Source:
    """CVAT for images 1.1 (annotations.xml), or else CVAT's "Segmentation mask 1.1" folder."""
    path = src if src.is_file() else src / "annotations.xml"
    if not path.is_file():
        return import_voc(src, take)
    root = read_xml(path, "CVAT file")
    if root.tag != "annotations" or root.findtext("version", "").strip() not in ("1.0", "1.1"):
        raise DataError(f"{path} is not a CVAT for images 1.1 file: expected <annotations><version>1.1</version>")
    mask_classes, box_classes = _classes(root, path, take)
    roots = list(dict.fromkeys([path.parent / "images", path.parent]))
    source = Source(mask_classes, {}, iter(()), box_classes=box_classes)
    source.samples = _samples(root, path, roots, take, source)
    return source
