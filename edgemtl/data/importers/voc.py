"""Pascal VOC (masks and boxes), labelme2voc's output, and CVAT's "Segmentation mask 1.1" export.

    SRC/
      labelmap.txt                       CVAT: `# label:color_rgb:parts:actions`, then `car:255,0,0::` per
                                         class (cvat.ai docs, "Segmentation Mask" format)
      class_names.txt                    labelme2voc: `_background_`, then one class per line
      JPEGImages/<name>.jpg              the frames
      SegmentationClass/<name>.png       class masks: colour PNGs (CVAT: colours of labelmap.txt) or
                                         palette PNGs whose index is the class id (VOC: 0..20, 255 = void);
                                         labelme2voc's older releases wrote them to SegmentationClassPNG/
      Annotations/<name>.xml             boxes: <object><name>car</name><bndbox><xmin>…</bndbox></object>
      ImageSets/Segmentation/*.txt       image names, one per line; train.txt / val.txt / test.txt give the
      ImageSets/Main/*.txt               split column, default.txt / trainval.txt list images only

Pascal VOC's classes (the VOC2012 devkit's order) are used when there is neither labelmap.txt nor
class_names.txt. A class named `background` or `_background_` (any case) is the background class.
Box coordinates are read as written, in pixels (as CVAT, labelme2voc and Ultralytics' converter write
and read them; the original devkit's 1-based pixel indices differ from that by at most one pixel).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from edgemtl.data.importers.base import Source, SourceBox, SourceSample
from edgemtl.data.importers.classmap import BACKGROUND, background_first
from edgemtl.data.importers.colours import colour_ids, read_rgb
from edgemtl.data.importers.files import find_image, read_xml, xml_number
from edgemtl.data.masks import read_mask
from edgemtl.errors import DataError
from edgemtl.tasks import IGNORE_PIXEL

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
_SPLIT_FILES = ("train", "val", "test")


def read_labelmap(path: Path) -> tuple[tuple[str, ...], dict[tuple[int, int, int], int]]:
    """CVAT's labelmap.txt → (class names, background first, colour → class id)."""
    names: list[str] = []
    colours: list[tuple[int, ...]] = []
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
        names.append(name.strip())
        colours.append(colour)
    if not names:
        raise DataError(f"{path} lists no labels: expected lines label:r,g,b::")
    classes, index = background_first(names, add=False)
    return classes, {colour: index[i] for i, colour in enumerate(colours)}  # type: ignore[misc]


def _class_names(path: Path) -> tuple[str, ...]:
    """labelme2voc's class_names.txt: `_background_` (→ background), then the classes, in id order."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} lists no classes: expected _background_ then one class per line")
    classes, index = background_first(names, add=False)
    if index != list(range(len(names))):
        raise DataError(f"{path} names the background class after another: expected _background_ first (id 0)")
    return classes


def _listed(src: Path, sets: str, folder: Path, suffix: str) -> dict[str, str]:
    """name → split of every image: from ImageSets/<sets>, else every file in `folder`."""
    listings = src / "ImageSets" / sets
    splits: dict[str, str] = {}
    if listings.is_dir():
        for listing in sorted(listings.glob("*.txt")):
            split = listing.stem if listing.stem in _SPLIT_FILES else ""
            for name in listing.read_text(encoding="utf-8").split():
                if split or name not in splits:
                    splits[name] = split
    return splits or {p.stem: "" for p in sorted(folder.glob(f"*{suffix}"))}


def _index_mask(path: Path, classes: tuple[str, ...]) -> np.ndarray:
    """A palette mask: its indices are the class ids, 255 (VOC's object borders, labelme's __ignore__) unlabelled."""
    with Image.open(path) as image:
        mode = image.mode
    if mode not in ("P", "L"):
        raise DataError(
            f"mask {path} is an RGB image but {path.parent.parent} has no labelmap.txt: expected VOC palette "
            "masks, or CVAT's labelmap.txt naming each colour"
        )
    ids = read_mask(path).astype(np.int64)
    ids[ids == IGNORE_PIXEL] = -1
    if ids.max() >= len(classes):
        raise DataError(f"mask {path} holds class id {ids.max()}: expected ids 0..{len(classes) - 1}")
    return ids


def _boxes(path: Path, classes: tuple[str, ...] | None) -> list[SourceBox]:
    """The <object>s of one VOC annotation file; a name not among `classes` (when given) is an error."""
    boxes = []
    for index, item in enumerate(read_xml(path, "VOC annotation").iter("object")):
        name = (item.findtext("name") or "").strip()
        where = f"{path} object {index} ({name!r})"
        if classes is not None and name not in classes:
            raise DataError(f"{where} has a class not in the class list ({', '.join(classes)}): relabel it")
        box = item.find("bndbox")
        corners = tuple(xml_number(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append(SourceBox(name, corners, where))  # type: ignore[arg-type]
    return boxes


def _mask_folder(src: Path) -> Path | None:
    for name in ("SegmentationClass", "SegmentationClassPNG"):
        if (src / name).is_dir() and any((src / name).glob("*.png")):
            return src / name
    return None


def _samples(
    src: Path, masks: Path | None, boxes: dict[str, list[SourceBox]] | None, mask_of, splits: dict[str, str]
) -> Iterator[SourceSample]:
    folders = [src / "JPEGImages", src / "images"]
    for name, split in sorted(splits.items()):
        image = find_image(folders, name)
        if image is None:
            raise DataError(f"image {name} is listed but not in {src / 'JPEGImages'}: export the task with images")
        mask = None
        if masks is not None:
            mask_path = masks / f"{name}.png"
            if not mask_path.is_file() and boxes is None:
                raise DataError(f"image {name} has no mask {mask_path}: expected {masks.name}/<name>.png")
            mask = mask_of(mask_path) if mask_path.is_file() else None
        yield SourceSample(name, image, mask, split=split, boxes=boxes.get(name) if boxes is not None else None)


def import_voc(src: Path, take: str = "auto") -> Source:
    """A Pascal VOC, labelme2voc or CVAT "Segmentation mask 1.1" folder: masks, boxes, or both."""
    masks, annotations = _mask_folder(src), src / "Annotations"
    if take in ("masks", "both") and masks is None:
        raise DataError(f"{src} has no SegmentationClass/ masks: expected them for --take {take}")
    if take in ("boxes", "both") and not annotations.is_dir():
        raise DataError(f"{src} has no Annotations/ folder: expected VOC box files there for --take {take}")
    masks = masks if take != "boxes" else None
    annotations = annotations if take != "masks" and annotations.is_dir() else None
    if masks is None and annotations is None:
        raise DataError(f"{src} has no SegmentationClass/ or Annotations/ folder: expected a VOC-layout export")
    if (src / "labelmap.txt").is_file():
        classes, table = read_labelmap(src / "labelmap.txt")
        mask_of = lambda path: colour_ids(read_rgb(path), table, path, str(src / "labelmap.txt"))  # noqa: E731
    else:
        names = src / "class_names.txt"
        classes = _class_names(names) if names.is_file() else VOC_CLASSES
        mask_of = lambda path: _index_mask(path, classes)  # noqa: E731
    listed = (src / "labelmap.txt").is_file() or (src / "class_names.txt").is_file()
    splits: dict[str, str] = {}
    boxes, box_classes = None, None
    if annotations is not None:
        splits = _listed(src, "Main", annotations, ".xml")
        objects = tuple(c for c in classes if c != BACKGROUND)
        boxes = {p.stem: _boxes(p, objects if listed else None) for p in sorted(annotations.glob("*.xml"))}
        seen = {b.name for found in boxes.values() for b in found}
        box_classes = objects if listed or seen <= set(objects) else tuple(sorted(seen))
    if masks is not None:
        splits = {**_listed(src, "Segmentation", masks, ".png"), **splits}
    samples = _samples(src, masks, boxes, mask_of, splits)
    return Source(classes if masks is not None else None, {}, samples, box_classes=box_classes)
