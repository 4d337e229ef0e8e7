"""Pascal VOC segmentation, and CVAT's "Segmentation mask 1.1" export (the same layout plus labelmap.txt).

    SRC/
      labelmap.txt                       CVAT: `# label:color_rgb:parts:actions`, then `car:255,0,0::` per
                                         class (cvat.ai docs, "Segmentation Mask" format). Absent: Pascal VOC
      JPEGImages/<name>.jpg              the frames
      SegmentationClass/<name>.png       class masks: colour PNGs (CVAT: colours of labelmap.txt) or
                                         palette PNGs whose index is the class id (VOC: 0..20, 255 = void)
      ImageSets/Segmentation/*.txt       image names, one per line; train.txt / val.txt / test.txt give the
                                         split column, default.txt / trainval.txt list images only

Pascal VOC's classes (the VOC2012 devkit's order) are used when there is no labelmap.txt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.colours import colour_ids, read_rgb
from edgemtl.data.importers.files import find_image
from edgemtl.data.masks import read_mask
from edgemtl.errors import DataError
from edgemtl.tasks import IGNORE_PIXEL

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
_SPLIT_FILES = ("train", "val", "test")


def read_labelmap(path: Path) -> tuple[tuple[str, ...], dict[tuple[int, int, int], int]]:
    """CVAT's labelmap.txt → (class names, colour → class id)."""
    classes: list[str] = []
    table: dict[tuple[int, int, int], int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        try:
            colour = tuple(int(v) for v in rest.split(":", 1)[0].split(","))
        except ValueError:
            colour = ()
        if not name.strip() or len(colour) != 3:
            raise DataError(f"{path} line {number} is {line!r}: expected label:r,g,b:parts:actions")
        classes.append(name.strip())
        table[colour] = len(classes) - 1
    if not classes:
        raise DataError(f"{path} lists no labels: expected lines label:r,g,b::")
    return tuple(classes), table


def _listed(src: Path, masks: Path) -> list[tuple[str, str]]:
    """(name, split) of every image: from ImageSets/Segmentation, else every mask in SegmentationClass."""
    sets = src / "ImageSets" / "Segmentation"
    splits: dict[str, str] = {}
    if sets.is_dir():
        for listing in sorted(sets.glob("*.txt")):
            split = listing.stem if listing.stem in _SPLIT_FILES else ""
            for name in listing.read_text(encoding="utf-8").split():
                if split or name not in splits:
                    splits[name] = split
    if not splits:
        if not masks.is_dir():
            raise DataError(f"{src} has no {masks.name}/ folder: expected a VOC / CVAT segmentation mask export")
        splits = {p.stem: "" for p in sorted(masks.glob("*.png"))}
    return sorted(splits.items())


def _index_mask(path: Path) -> np.ndarray:
    """A VOC palette mask: its indices are the class ids, 255 (the object borders) unlabelled."""
    with Image.open(path) as image:
        mode = image.mode
    if mode not in ("P", "L"):
        raise DataError(
            f"mask {path} is an RGB image but {path.parent.parent} has no labelmap.txt: expected VOC palette "
            "masks, or CVAT's labelmap.txt naming each colour"
        )
    ids = read_mask(path).astype(np.int64)
    ids[ids == IGNORE_PIXEL] = -1
    if ids.max() >= len(VOC_CLASSES):
        raise DataError(f"mask {path} holds class id {ids.max()}: Pascal VOC has ids 0..{len(VOC_CLASSES) - 1}")
    return ids


def _samples(src: Path, table: dict[tuple[int, int, int], int] | None, table_name: str) -> Iterator[SourceSample]:
    masks = src / "SegmentationClass"
    folders = [src / "JPEGImages", src / "images"]
    for name, split in _listed(src, masks):
        image = find_image(folders, name)
        if image is None:
            raise DataError(f"image {name} is listed but not in {src / 'JPEGImages'}: export the task with images")
        mask_path = masks / f"{name}.png"
        if not mask_path.is_file():
            raise DataError(f"image {name} has no mask {mask_path}: expected SegmentationClass/<name>.png")
        mask = colour_ids(read_rgb(mask_path), table, mask_path, table_name) if table else _index_mask(mask_path)
        yield SourceSample(name, image, mask, split=split)


def import_voc(src: Path) -> Source:
    """A Pascal VOC or CVAT "Segmentation mask 1.1" folder."""
    labelmap = src / "labelmap.txt"
    if labelmap.is_file():
        classes, table = read_labelmap(labelmap)
        return Source(classes, {}, _samples(src, table, str(labelmap)))
    return Source(VOC_CLASSES, {}, _samples(src, None, ""))
