"""Labels from the tools people use → the folder format (`edgemtl data import FORMAT SRC DST`).

One module per format reads it into samples (`base.Source`); `base.write_import` maps the classes,
joins image-level labels and writes the destination whole or not at all. The table below is the one
place a format is named: the CLI's choices, its help and `import_dataset` all read it, like the kinds
table of edgemtl.kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgemtl.data.importers.base import TAKES, ImportReport, Source, check_destination, write_import
from edgemtl.data.importers.cityscapes import import_cityscapes
from edgemtl.data.importers.classmap import ClassMap
from edgemtl.data.importers.coco import import_coco
from edgemtl.data.importers.colours import import_colours
from edgemtl.data.importers.cvat import import_cvat
from edgemtl.data.importers.images import import_images
from edgemtl.data.importers.labelme import import_labelme
from edgemtl.data.importers.labels import LabelTable
from edgemtl.data.importers.voc import import_voc
from edgemtl.data.importers.yolo import import_yolo
from edgemtl.errors import ConfigError, DataError


@dataclass(frozen=True)
class Importer:
    """One format: how to read it, what it is, and what its table is, if it takes one."""

    read: Callable[..., Source]
    description: str
    table: str | None = None  # what --table gives this format; None: it takes none
    boxes: bool = False  # it reads boxes, and takes --take (auto / masks / boxes / both)


IMPORTERS: dict[str, Importer] = {
    "voc": Importer(import_voc, "Pascal VOC: SegmentationClass/ masks, Annotations/ boxes (labelme2voc)", boxes=True),
    "cvat": Importer(import_cvat, "CVAT for images 1.1 XML (polygons, boxes), or 'Segmentation mask 1.1'", boxes=True),
    "coco": Importer(import_coco, "COCO instance or stuff JSON: polygons and RLE rasterised, bbox boxes", boxes=True),
    "labelme": Importer(import_labelme, "labelme JSON (shapes; rectangles as boxes; flags)", "labels.txt", boxes=True),
    "yolo": Importer(import_yolo, "YOLO txt boxes (Ultralytics data.yaml, images/ + labels/; classes.txt)", boxes=True),
    "cityscapes": Importer(import_cityscapes, "Cityscapes-style label-id PNGs", "id,class CSV"),
    "colours": Importer(import_colours, "RGB colour masks with a colour table", "class,r,g,b CSV"),
    "images": Importer(import_images, "a folder of images labelled only by --labels"),
}


def import_dataset(
    format_name: str,
    src: Path,
    dst: Path,
    class_map: ClassMap | None = None,
    labels: Path | None = None,
    table: Path | None = None,
    take: str = "auto",
) -> ImportReport:
    """Read SRC in `format_name`, and write the folder format to DST (new; outside SRC) whole or not at all.

    `take`: auto / masks / boxes / both, what becomes of each object (edgemtl.data.importers.base)."""
    importer = IMPORTERS.get(format_name)
    if importer is None:
        raise ConfigError(f"unknown import format {format_name!r}: expected one of {', '.join(IMPORTERS)}")
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise DataError(f"import source {src} does not exist: expected a {format_name} export")
    check_destination(src, dst)
    if table is not None and importer.table is None:
        raise ConfigError(f"format {format_name!r} takes no --table")
    if take not in TAKES:
        raise ConfigError(f"--take {take!r} is not known: expected one of {', '.join(TAKES)}")
    if take != "auto" and not importer.boxes:
        readers = ", ".join(name for name, i in IMPORTERS.items() if i.boxes)
        raise ConfigError(f"format {format_name!r} has no boxes, so no --take: it is for {readers}")
    label_table = LabelTable.read(labels) if labels is not None else None
    args = (src, table) if importer.table else (src,)
    source = importer.read(*args, take=take) if importer.boxes else importer.read(*args)
    return write_import(source, dst, class_map or ClassMap(), label_table)


__all__ = ["IMPORTERS", "TAKES", "ClassMap", "ImportReport", "Importer", "import_dataset"]
