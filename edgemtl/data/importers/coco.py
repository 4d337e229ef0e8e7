"""COCO instance or stuff annotations (cocodataset.org/#format-data), rasterised to a semantic mask.

    SRC/                                 or SRC = the JSON file itself
      annotations/instances_default.json   {"images": [{"id", "file_name", "width", "height"}],
                                            "annotations": [{"id", "image_id", "category_id", "segmentation",
                                                             "iscrowd", "area"}],
                                            "categories": [{"id", "name"}]}
      images/<file_name>                   the frames (also looked for beside the JSON)

A segmentation is a list of polygons [x1, y1, x2, y2, ...] or an RLE ({"counts": [...] or "...",
"size": [h, w]}), both decoded by pycocotools. The mask's classes are "background" then the categories
by id (a category named `background` or `_background_`, in any case, as labelme2coco writes for id 0,
is that background class, not another); larger annotations are painted first, so a small object on a
large one stays visible. A polygon crossing the image's border is clipped (and counted); one wholly
outside is an error. The categories an image's painted annotations name also become its image-level
labels (a multilabel task `categories`), so one import trains "what is where" and "what is in view".

Boxes (`bbox`: [x, y, width, height]) become the detection task `objects`: with `--take auto` those of
annotations without a segmentation (what was drawn as a box); `--take boxes` or `both` takes every
annotation's box (COCO's own instances carry both). Crowd annotations (iscrowd 1) give no box, as in
COCO's evaluation; they are counted in the report.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.data.importers.base import Source, SourceBox, SourceSample, routes
from edgemtl.data.importers.boxes import Box
from edgemtl.data.importers.classmap import background_first, is_background
from edgemtl.data.importers.files import MAX_XML_BYTES, inside, stem_of
from edgemtl.data.importers.polygons import CLIPPED_POLYGONS, clip_polygon
from edgemtl.errors import ConfigError, DataError
from edgemtl.jsonfile import read_json

LABEL_TASK = "categories"


def _annotation_file(src: Path) -> Path:
    if src.is_file():
        return src
    found = sorted((src / "annotations").glob("*.json")) if (src / "annotations").is_dir() else []
    found = found or sorted(src.glob("*.json"))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise DataError(f"{src} holds {len(found)} COCO JSON files ({listed}): expected one, or give its path as SRC")
    return found[0]


_EXPECTED = "expected a JSON object with lists 'images', 'annotations', 'categories'"


def _load(path: Path) -> dict[str, Any]:
    data = read_json(path, "COCO file", _EXPECTED, max_bytes=MAX_XML_BYTES)  # a large task's export: 100s of MB
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path} is not a COCO annotation file: {_EXPECTED}")
    return data


def _rasterise(segmentation: Any, height: int, width: int, where: str, counts: Counter[str]) -> np.ndarray:
    """(H, W) bool of one annotation; polygons crossing the border are clipped (counted), wholly outside an error."""
    from pycocotools import mask as coco_mask

    if isinstance(segmentation, list):
        polygons = []
        for index, polygon in enumerate(segmentation):
            points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) if len(polygon) % 2 == 0 else None
            if points is None or len(points) < 3:
                raise DataError(f"{where} polygon {index} has {len(polygon)} numbers: expected x,y pairs, 3 or more")
            points, clipped = clip_polygon(points, width, height, f"{where} polygon {index}")
            counts[CLIPPED_POLYGONS] += clipped
            polygons.append(points.ravel().tolist())
        rle = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width)) if polygons else None
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            raise DataError(f"{where} RLE has size {segmentation['size']}: expected the image's [{height}, {width}]")
        counts_ = segmentation["counts"]
        rle = (
            coco_mask.frPyObjects(segmentation, height, width)
            if isinstance(counts_, list)
            else {"size": [height, width], "counts": counts_.encode() if isinstance(counts_, str) else counts_}
        )
    else:
        raise DataError(f"{where} has segmentation {str(segmentation)[:40]!r}: expected polygons or an RLE")
    if rle is None:
        return np.zeros((height, width), bool)
    with warnings.catch_warnings():  # pycocotools' own NumPy 2 deprecation notice, not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def _drawn(annotation: dict[str, Any]) -> bool:
    """Whether the annotator drew a box (no segmentation), not a polygon or mask."""
    return not annotation.get("segmentation")


def _box(annotation: dict[str, Any], height: int, width: int, where: str) -> Box:
    """x1, y1, x2, y2 from COCO's bbox [x, y, width, height]; without one, the segmentation's extent."""
    bbox = annotation.get("bbox")
    if bbox is not None:
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise DataError(f"{where} has bbox {str(bbox)[:40]}: expected [x, y, width, height] in pixels")
        x, y, w, h = (float(v) for v in bbox)
        return x, y, x + w, y + h
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        try:
            points = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in segmentation])
        except (TypeError, ValueError):
            raise DataError(f"{where} has segmentation {str(segmentation)[:40]}: expected x,y pairs") from None
        (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
        return float(x1), float(y1), float(x2), float(y2)
    ys, xs = np.nonzero(_rasterise(segmentation, height, width, where, Counter()))
    if not len(xs):
        return 0.0, 0.0, 0.0, 0.0  # an empty mask: a box of no size, dropped and counted
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


@dataclass(frozen=True)
class _Classes:
    """Category id → its mask class (0 for a background-named category) and its box class name."""

    mask_ids: dict[Any, int]
    names: dict[Any, str]
    background: frozenset[Any]  # ids of categories named background or _background_


def _samples(
    data: dict[str, Any], path: Path, roots: list[Path], classes: _Classes, take: str, source: Source
) -> Iterator[SourceSample]:
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for annotation in data.get("annotations", []):
        by_image.setdefault(annotation.get("image_id"), []).append(annotation)
    for image in data["images"]:
        where = f"COCO file {path}: image id {image.get('id')}"
        file_name, height, width = image.get("file_name"), image.get("height"), image.get("width")
        if not isinstance(file_name, str) or not isinstance(height, int) or not isinstance(width, int):
            raise DataError(f"{where} lacks file_name, width or height: expected all three")
        found = next((p for p in (inside(r, file_name, where) for r in roots) if p.is_file()), None)
        if found is None:
            raise DataError(
                f"{where} names {file_name!r}, which is not in {' or '.join(map(str, roots))}: "
                "expected the images beside the annotations (images/), or remove the image from the JSON"
            )
        mask = np.zeros((height, width), dtype=np.int64) if source.classes is not None else None
        present: list[str] = []
        boxes: list[SourceBox] | None = [] if source.box_classes is not None else None
        annotations = sorted(by_image.get(image["id"], []), key=lambda a: -float(a.get("area", 0)))
        for annotation in annotations:
            label = f"{where}, annotation id {annotation.get('id')}"
            category = annotation.get("category_id")
            if category not in classes.names:
                known = ", ".join(f"{cid} {name}" for cid, name in list(classes.names.items())[:20])
                raise DataError(f"{label} has category_id {category}, not in 'categories' ({known}): fix the id")
            paint, box = routes(_drawn(annotation), take)
            if paint and mask is not None:
                polygon = annotation.get("segmentation") or _rectangle(_box(annotation, height, width, label))
                mask[_rasterise(polygon, height, width, label, source.counts)] = classes.mask_ids[category]
                name = classes.names[category]
                if category not in classes.background and name not in present:
                    present.append(name)
            if box and boxes is not None:
                if category in classes.background:
                    source.counts["boxes of the background class, left out"] += 1
                elif annotation.get("iscrowd"):
                    source.counts["crowd boxes (iscrowd 1), left out as COCO's evaluation does"] += 1
                else:
                    boxes.append(SourceBox(classes.names[category], _box(annotation, height, width, label), label))
        yield SourceSample(stem_of(file_name), found, mask, {LABEL_TASK: present}, boxes=boxes)


def _rectangle(box: Box) -> list[list[float]]:
    x1, y1, x2, y2 = box
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def _classes(data: dict[str, Any], path: Path, take: str) -> tuple[_Classes, tuple[str, ...] | None, tuple | None]:
    """The categories as mask classes (background first) and box classes, each None when no object goes there."""
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    raw = [str(c.get("name")) for c in categories]
    if len(set(raw)) != len(raw):
        raise DataError(f"{path} names a category twice: expected unique category names")
    painted, boxed = set(), set()
    for annotation in data.get("annotations", []):
        paint, box = routes(_drawn(annotation), take)
        if paint:
            painted.add(annotation.get("category_id"))
        if box:
            boxed.add(annotation.get("category_id"))
    ids = [c.get("id") for c in categories]
    in_mask = [i for i, cid in enumerate(ids) if cid in painted or cid not in boxed]
    mask_classes, index = background_first([raw[i] for i in in_mask], add=True)
    mask_ids = {ids[i]: index[k] for k, i in enumerate(in_mask)}
    box_classes = tuple(
        raw[i] for i, cid in enumerate(ids) if (cid in boxed or cid not in painted) and not is_background(raw[i])
    )
    background = frozenset(cid for cid, name in zip(ids, raw) if is_background(name))
    names = {cid: ("background" if is_background(name) else name) for cid, name in zip(ids, raw)}
    return (
        _Classes(mask_ids, names, background),
        mask_classes if painted else None,
        box_classes if boxed else None,
    )


def import_coco(src: Path, take: str = "auto") -> Source:
    """A COCO instance or stuff JSON and its images."""
    try:
        import pycocotools.mask  # noqa: F401  (decoded per annotation below)
    except ModuleNotFoundError:
        raise ConfigError("importing COCO needs pycocotools: pip install 'edgemtl[data]'") from None
    path = _annotation_file(src)
    data = _load(path)
    classes, mask_classes, box_classes = _classes(data, path, take)
    if mask_classes is None and box_classes is None:
        mask_classes = background_first([str(c.get("name")) for c in data["categories"]], add=True)[0]
    folder = src if src.is_dir() else path.parent
    roots = list(dict.fromkeys([folder / "images", path.parent / "images", path.parent, folder]))
    label_tasks = {LABEL_TASK: mask_classes[1:]} if mask_classes is not None else {}
    source = Source(mask_classes, label_tasks, iter(()), frozenset({LABEL_TASK}), box_classes=box_classes)
    source.samples = _samples(data, path, roots, classes, take, source)
    return source
