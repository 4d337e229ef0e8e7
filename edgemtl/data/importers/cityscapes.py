"""Cityscapes-style label-id PNGs: each pixel a label id, an id → class table naming them.

    SRC/                                       the Cityscapes layout (cityscapes-dataset.com, "gtFine"):
      leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
    or
      images/<stem>.png|.jpg                   any dataset of id masks, flat
      masks/<stem>.png                         8-bit greyscale (or palette) PNGs of label ids

The table (`--table ids.csv`, header `id,class`) names each id's class; ids sharing a class are merged,
and a class `255` (or `ignore`) marks ids as unlabelled. Without a table, Cityscapes' own is used: its 19
evaluated classes by label id (cityscapesScripts' labels.py, trainId ≠ 255), every other id unlabelled.
An id the table does not list is an error naming the mask. In the Cityscapes layout the split comes from
the folder (train / val / test) and the group from `<city>_<seq>`, so a sequence never straddles a split.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.classmap import background_first
from edgemtl.data.importers.colours import IGNORE_NAMES
from edgemtl.data.importers.files import image_files, read_table
from edgemtl.data.masks import read_mask
from edgemtl.errors import DataError

#: Cityscapes' evaluated classes by label id; ids 0..33 not named here (void, flat "parking", ...) are ignored.
CITYSCAPES_CLASSES = {
    7: "road", 8: "sidewalk", 11: "building", 12: "wall", 13: "fence", 17: "pole", 19: "traffic light",
    20: "traffic sign", 21: "vegetation", 22: "terrain", 23: "sky", 24: "person", 25: "rider", 26: "car",
    27: "truck", 28: "bus", 31: "train", 32: "motorcycle", 33: "bicycle",
}  # fmt: skip
_CITYSCAPES_IDS = 34


def read_id_table(path: Path) -> dict[int, str]:
    """ids.csv → label id → class name (IGNORE_NAMES for unlabelled ids)."""
    rows = read_table(path, "id table", "id,class")
    table: dict[int, str] = {}
    for line, row in enumerate(rows, start=2):
        name = (row.get("class") or "").strip()
        try:
            label_id = int(row.get("id") or "")
        except ValueError:
            label_id = -1
        if not name or not 0 <= label_id <= 255:
            raise DataError(f"{path} line {line} is not an id and a class: expected id,class with an id 0..255")
        table[label_id] = name
    if not table:
        raise DataError(f"id table {path} lists no ids: expected rows id,class")
    return table


def _lookup(table: dict[int, str]) -> tuple[tuple[str, ...], np.ndarray]:
    """(classes, (256,) id → class index, -1 unlabelled, -2 not in the table)."""
    names = list(dict.fromkeys(n for n in table.values() if n not in IGNORE_NAMES))
    classes, index = background_first(names, add=False)  # `background` / `_background_`, any case: one, first
    lookup = np.full(256, -2, dtype=np.int64)
    for label_id, name in table.items():
        lookup[label_id] = -1 if name in IGNORE_NAMES else index[names.index(name)]
    return classes, lookup


def _pairs(src: Path) -> Iterator[tuple[str, Path, Path, str, str]]:
    """(name, image, mask, split, group) of every frame, in either layout."""
    labels = src / "gtFine"
    if labels.is_dir():
        for mask in sorted(labels.rglob("*_gtFine_labelIds.png")):
            name = mask.name.removesuffix("_gtFine_labelIds.png")
            relative = mask.parent.relative_to(labels)
            image = src / "leftImg8bit" / relative / f"{name}_leftImg8bit.png"
            if not image.is_file():
                raise DataError(f"mask {mask} has no image {image}: expected leftImg8bit/ beside gtFine/")
            split = relative.parts[0] if relative.parts and relative.parts[0] in ("train", "val", "test") else ""
            yield name, image, mask, split, "_".join(name.split("_")[:2])
        return
    for image in image_files(src / "images"):
        mask = src / "masks" / f"{image.stem}.png"
        if not mask.is_file():
            raise DataError(f"image {image} has no mask {mask}: expected masks/<stem>.png of label ids per image")
        yield image.stem, image, mask, "", ""


def _samples(src: Path, lookup: np.ndarray, table_name: str) -> Iterator[SourceSample]:
    for name, image, mask_path, split, group in _pairs(src):
        ids = lookup[read_mask(mask_path)]
        if (ids == -2).any():
            unknown = sorted({int(v) for v in read_mask(mask_path)[ids == -2]})
            raise DataError(
                f"mask {mask_path} holds label ids {unknown[:5]} that {table_name} does not list: add them to the "
                "table (id,class; class 255 to ignore)"
            )
        yield SourceSample(name, image, ids, split=split, group=group)


def import_cityscapes(src: Path, table: Path | None = None) -> Source:
    """Label-id masks and their images, with an id → class table (default: Cityscapes' evaluated classes)."""
    if table is None:
        ids = {i: CITYSCAPES_CLASSES.get(i, "255") for i in range(_CITYSCAPES_IDS)}
        classes, lookup = _lookup(ids)
        lookup[_CITYSCAPES_IDS:] = -1  # Cityscapes writes nothing above 33 but -1 (license plate) as 255
        return Source(classes, {}, _samples(src, lookup, "Cityscapes' label table"))
    classes, lookup = _lookup(read_id_table(table))
    return Source(classes, {}, _samples(src, lookup, str(table)))
