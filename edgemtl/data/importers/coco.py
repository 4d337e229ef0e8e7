"""COCO instance or stuff annotations (cocodataset.org/#format-data), rasterised to a semantic mask.

    SRC/                                 or SRC = the JSON file itself
      annotations/instances_default.json   {"images": [{"id", "file_name", "width", "height"}],
                                            "annotations": [{"id", "image_id", "category_id", "segmentation",
                                                             "iscrowd", "area"}],
                                            "categories": [{"id", "name"}]}
      images/<file_name>                   the frames (also looked for beside the JSON)

A segmentation is a list of polygons [x1, y1, x2, y2, ...] or an RLE ({"counts": [...] or "...",
"size": [h, w]}), both decoded by pycocotools. The mask's classes are "background" then the categories
by id; larger annotations are painted first, so a small object on a large one stays visible. The
categories an image's annotations name also become its image-level labels (a multilabel task
`categories`), so one import trains "what is where" and "what is in view".
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.files import inside, stem_of
from edgemtl.errors import ConfigError, DataError

BACKGROUND = "background"
LABEL_TASK = "categories"
_EDGE = 1.0  # pixels a polygon point may lie beyond the image's border (tools round outward)


def _annotation_file(src: Path) -> Path:
    if src.is_file():
        return src
    found = sorted((src / "annotations").glob("*.json")) if (src / "annotations").is_dir() else []
    found = found or sorted(src.glob("*.json"))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise DataError(f"{src} holds {len(found)} COCO JSON files ({listed}): expected one, or give its path as SRC")
    return found[0]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"COCO file {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")):
        raise DataError(f"{path} is not a COCO annotation file: expected lists 'images', 'annotations', 'categories'")
    return data


def _rasterise(segmentation: Any, height: int, width: int, where: str) -> np.ndarray:
    """(H, W) bool of one annotation; a polygon outside the image is an error naming it."""
    from pycocotools import mask as coco_mask

    if isinstance(segmentation, list):
        for index, polygon in enumerate(segmentation):
            points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2) if len(polygon) % 2 == 0 else None
            if points is None or len(points) < 3:
                raise DataError(f"{where} polygon {index} has {len(polygon)} numbers: expected x,y pairs, 3 or more")
            x, y = points[:, 0], points[:, 1]
            if x.min() < -_EDGE or y.min() < -_EDGE or x.max() > width + _EDGE or y.max() > height + _EDGE:
                raise DataError(
                    f"{where} polygon {index} reaches ({x.max():g}, {y.max():g}) / ({x.min():g}, {y.min():g}), "
                    f"outside the {height}×{width} (height×width) image: fix the polygon or the image's size"
                )
        rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width)) if segmentation else None
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        if list(segmentation["size"]) != [height, width]:
            raise DataError(f"{where} RLE has size {segmentation['size']}: expected the image's [{height}, {width}]")
        counts = segmentation["counts"]
        rle = (
            coco_mask.frPyObjects(segmentation, height, width)
            if isinstance(counts, list)
            else {
                "size": [height, width],
                "counts": counts.encode() if isinstance(counts, str) else counts,
            }
        )
    else:
        raise DataError(f"{where} has segmentation {str(segmentation)[:40]!r}: expected polygons or an RLE")
    if rle is None:
        return np.zeros((height, width), bool)
    with warnings.catch_warnings():  # pycocotools' own NumPy 2 deprecation notice, not the user's concern
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def _samples(
    data: dict[str, Any], path: Path, roots: list[Path], ids: dict[int, int], names: list[str]
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
        mask = np.zeros((height, width), dtype=np.int64)
        present: list[str] = []
        annotations = sorted(by_image.get(image["id"], []), key=lambda a: -float(a.get("area", 0)))
        for annotation in annotations:
            label = f"{where}, annotation id {annotation.get('id')}"
            if annotation.get("category_id") not in ids:
                raise DataError(f"{label} has category_id {annotation.get('category_id')}: not in 'categories'")
            source_id = ids[annotation["category_id"]]
            mask[_rasterise(annotation.get("segmentation"), height, width, label)] = source_id
            if names[source_id] not in present:
                present.append(names[source_id])
        yield SourceSample(stem_of(file_name), found, mask, {LABEL_TASK: present})


def import_coco(src: Path) -> Source:
    """A COCO instance or stuff JSON and its images."""
    try:
        import pycocotools.mask  # noqa: F401  (decoded per annotation below)
    except ModuleNotFoundError:
        raise ConfigError("importing COCO needs pycocotools: pip install 'edgemtl[data]'") from None
    path = _annotation_file(src)
    data = _load(path)
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    names = [BACKGROUND, *(str(c.get("name")) for c in categories)]
    if len(set(names)) != len(names):
        raise DataError(f"{path} names a category twice, or one {BACKGROUND!r}: expected unique category names")
    ids = {c.get("id"): i + 1 for i, c in enumerate(categories)}
    folder = src if src.is_dir() else path.parent
    roots = list(dict.fromkeys([folder / "images", path.parent / "images", path.parent, folder]))
    samples = _samples(data, path, roots, ids, names)
    return Source(tuple(names), {LABEL_TASK: tuple(names[1:])}, samples, frozenset({LABEL_TASK}))
