"""YOLO box labels: one text file per image, `class cx cy w h` per line, normalised to the image's size.

Ultralytics' layout (docs.ultralytics.com/datasets/detect/), as Ultralytics and Roboflow export it:

    SRC/
      data.yaml          path: .   train: images/train   val: images/val   names: {0: cone, 1: person}
      images/train/0001.jpg            (or train/images/0001.jpg: any folder that data.yaml names)
      labels/train/0001.txt            the image's path with its last `images` folder → `labels`, .txt
                                       0 0.512 0.433 0.120 0.250

or the older darknet / LabelImg layout: `classes.txt` (one name per line, the line number is the id)
with the images, and each image's .txt beside it or in labels/. An image without a label file holds no
objects, as Ultralytics reads it. A line with other than five fields, a coordinate outside [0, 1] or a
class id that names no class is an error naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from edgemtl.data.boxes import MAX_FILE_BOXES
from edgemtl.data.importers.base import Source, SourceBox, SourceSample
from edgemtl.data.importers.files import image_files
from edgemtl.data.manifest import IMAGE_SUFFIXES
from edgemtl.errors import ConfigError, DataError

_SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}
MAX_LABEL_BYTES = 64 * 1024  # MAX_FILE_BOXES lines of five numbers, with room


def _yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ModuleNotFoundError:
        raise ConfigError("importing YOLO's data.yaml needs PyYAML: pip install 'edgemtl[data]'") from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path} is not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("names"), (list, dict)):
        raise DataError(f"{path} has no 'names': expected names: [cone, person] or names: {{0: cone, 1: person}}")
    return data


def _names(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    names = data["names"]
    if isinstance(names, dict):
        if sorted(names, key=str) != sorted(range(len(names)), key=str):
            raise DataError(f"{path} names ids {sorted(names)}: expected 0, 1, 2, … with none missing")
        names = [names[i] for i in range(len(names))]
    names = [str(n).strip() for n in names]
    if not names or len(set(names)) != len(names) or not all(names):
        raise DataError(f"{path} names {names}: expected one or more class names, each once")
    return tuple(names)


def _folders(data: dict[str, Any], path: Path, src: Path) -> list[tuple[Path, str]]:
    """(image folder, split) of each split data.yaml names that exists inside SRC."""
    base = path.parent / str(data.get("path") or ".")
    found = []
    for key, split in _SPLITS.items():
        entries = data.get(key) or []
        for entry in [entries] if isinstance(entries, str) else entries:
            tries = [base / entry, path.parent / entry, path.parent / str(entry).lstrip("./")]
            folder = next((t for t in tries if t.is_dir() and t.resolve().is_relative_to(src.resolve())), None)
            if folder is not None and (folder.resolve(), split) not in found:
                found.append((folder.resolve(), split))
    if not found:
        fallback = src / "images"
        if not fallback.is_dir():
            raise DataError(f"{path}'s train / val / test folders are not inside {src}: expected images/ there")
        found = [(fallback, "")]
    return found


def _label_file(image: Path, root: Path) -> Path:
    """Ultralytics' rule inside SRC: the last `images` folder of the path becomes `labels`, the suffix .txt;
    without one (darknet, LabelImg), the .txt beside the image, else in SRC/labels/."""
    parts = list(image.relative_to(root).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return root.joinpath(*parts).with_suffix(".txt")
    beside = image.with_suffix(".txt")
    return beside if beside.is_file() else root / "labels" / beside.name


def _read_boxes(path: Path, names: tuple[str, ...], size: tuple[int, int], source: str) -> list[SourceBox]:
    width, height = size
    if path.stat().st_size > MAX_LABEL_BYTES:
        raise DataError(f"{path} is over {MAX_LABEL_BYTES} bytes: expected at most {MAX_FILE_BOXES} boxes")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not readable text ({exc}): expected lines 'class cx cy w h'") from None
    boxes = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        if len(fields) != 5:
            raise DataError(
                f"{where} has {len(fields)} fields: expected 'class cx cy w h' (5; a polygon line is YOLO "
                "segmentation, which edgemtl does not read as boxes); fix the line"
            )
        try:
            class_id, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            raise DataError(f"{where} is {line.strip()!r}: expected an integer class id and four numbers") from None
        if not 0 <= class_id < len(names):
            known = ", ".join(f"{i} {n}" for i, n in enumerate(names))
            raise DataError(f"{where} has class id {class_id}, which {source} does not name ({known}): fix the id")
        outside = [(k, v) for k, v in zip(("cx", "cy", "w", "h"), values) if not 0.0 <= v <= 1.0]
        if outside:
            key, value = outside[0]
            raise DataError(
                f"{where} has {key} {value:g}, outside [0, 1]: expected coordinates as fractions of the image's "
                "width and height; export normalised coordinates"
            )
        cx, cy, w, h = values
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        boxes.append(SourceBox(names[class_id], box, f"{where} box"))
    return boxes


def _samples(folders: list[tuple[Path, str]], src: Path, names: tuple[str, ...], source: str) -> Iterator[SourceSample]:
    for folder, split in folders:
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        images = images or image_files(folder)  # an empty folder: the error names it
        for image in images:
            labels = _label_file(image, src.resolve())
            try:
                with Image.open(image) as opened:
                    size = opened.size
            except (OSError, ValueError) as exc:
                raise DataError(f"image {image} cannot be read ({exc}): expected a PNG, JPEG or BMP file") from None
            boxes = _read_boxes(labels, names, size, source) if labels.is_file() else []
            name = "_".join(image.relative_to(folder).with_suffix("").parts)
            yield SourceSample(
                name if len(folders) == 1 else f"{split or folder.name}_{name}", image, boxes=boxes, split=split
            )


def import_yolo(src: Path, take: str = "auto") -> Source:
    """A YOLO dataset: data.yaml (Ultralytics) or classes.txt (darknet, LabelImg), images and label files."""
    if take == "masks":
        raise DataError("YOLO labels are boxes: --take masks has nothing to read; use auto or boxes")
    yaml_path = src if src.is_file() else next(iter(sorted(src.glob("*.yaml")) + sorted(src.glob("*.yml"))), None)
    root = src.parent if src.is_file() else src
    if yaml_path is not None:
        data = _yaml(yaml_path)
        names, folders, where = _names(data, yaml_path), _folders(data, yaml_path, root), f"{yaml_path.name}'s names"
    else:
        listing = next((p for p in (root / "classes.txt", root / "labels" / "classes.txt") if p.is_file()), None)
        if listing is None:
            raise DataError(f"{src} has neither data.yaml nor classes.txt: expected the class names in one of them")
        names = tuple(line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip())
        if not names or len(set(names)) != len(names):
            raise DataError(f"{listing} lists {len(names)} names, or one twice: expected each class once, in id order")
        folders, where = [(root / "images" if (root / "images").is_dir() else root, "")], listing.name
    return Source(None, {}, _samples(folders, root, names, where), box_classes=names)
