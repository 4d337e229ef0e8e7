"""What every importer hands over, and the one writer that turns it into the folder format.

An importer reads a labelling tool's files and yields samples: an image, a mask of *source* class ids,
boxes by source class name, and image-level labels by name. The writer applies the class map, joins
image-level labels from a CSV or JSON file, applies the loader's box rules (edgemtl.data.importers.boxes:
clip, drop, count), and writes images/, masks/, boxes/, labels.csv and tasks.json into a staging folder that
becomes the destination only once every sample is written (`edgemtl.data.folder.staged_folder`). So each
format's module is only about reading its format, and all of them check, map and report alike.

Masks or boxes (`--take`): `auto` imports each object as the tool drew it (a polygon or RLE → the mask,
a box or rectangle → a box); `masks` paints every object (boxes as filled rectangles), `boxes` takes
every object's box (a polygon's extent), `both` does both. Formats with separate mask and box files
(VOC, YOLO) read the files `--take` names.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.boxes import BOXES_DIR
from edgemtl.data.folder import staged_folder
from edgemtl.data.importers.boxes import Box, BoxCounts, detection_task, fit_box, write_boxes
from edgemtl.data.importers.classmap import ClassMap, MappedClasses
from edgemtl.data.importers.labels import LabelTable
from edgemtl.data.manifest import IMAGE_SUFFIXES
from edgemtl.data.masks import write_mask
from edgemtl.errors import DataError, OutputError
from edgemtl.kinds import kind_of
from edgemtl.tasks import IGNORE_PIXEL, TaskKind, TaskSpec, tasks_to_json

SEGMENTATION_TASK = "segmentation"  # the mask task an import writes
DETECTION_TASK = "objects"  # the box task an import writes
TAKES = ("auto", "masks", "boxes", "both")


def routes(drawn_as_box: bool, take: str) -> tuple[bool, bool]:
    """(paint it into the mask, take its box) for one object, by how it was drawn and `--take`."""
    if take == "auto":
        return not drawn_as_box, drawn_as_box
    return take in ("masks", "both"), take in ("boxes", "both")


@dataclass(frozen=True)
class SourceBox:
    """One box as a tool labelled it: its source class, x1, y1, x2, y2 in the image's pixels, where it came from."""

    name: str
    box: Box
    where: str  # the file and annotation, for errors


@dataclass
class SourceSample:
    """One frame as a tool labelled it. `mask` holds indices into `Source.classes`, -1 where unlabelled."""

    name: str  # the stem it is written under: unique within the import
    image: Path | np.ndarray  # a file to copy as it is, or decoded BGR pixels (e.g. labelme's imageData)
    mask: np.ndarray | None = None  # (H, W) integer source class ids; None: the format has no mask here
    labels: dict[str, list[str]] = field(default_factory=dict)  # multilabel task → names present
    boxes: list[SourceBox] | None = None  # None: its boxes were not labelled; []: labelled, no objects
    split: str = ""  # train / val / test where the format says (VOC's ImageSets, Cityscapes' folders)
    group: str = ""  # a sequence the frame belongs to, where the format says (Cityscapes' city_sequence)


@dataclass
class Source:
    """What an importer read: the mask classes (None: no masks), image-level tasks, and the samples (lazy)."""

    classes: tuple[str, ...] | None
    label_tasks: dict[str, tuple[str, ...]]  # multilabel task → its label names, in order
    samples: Iterator[SourceSample]
    mapped_labels: frozenset[str] = frozenset()  # label tasks named after mask classes: the class map applies
    notes: list[str] = field(default_factory=list)  # what the importer skipped, for the report (filled as it reads)
    box_classes: tuple[str, ...] | None = None  # the classes of the boxes, no background; None: no boxes
    counts: Counter[str] = field(default_factory=Counter)  # what the edge rules did, e.g. polygons clipped


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote and how it mapped the classes."""

    destination: Path
    frames: int
    tasks: tuple[TaskSpec, ...]
    mapping: list[str]
    pixel_share: dict[str, float]  # mask class → share of labelled pixels
    notes: list[str]
    boxes: BoxCounts = field(default_factory=BoxCounts)
    counts: dict[str, int] = field(default_factory=dict)  # polygons clipped, boxes skipped, ...

    def lines(self) -> list[str]:
        lines = [f"wrote {self.destination}: {self.frames} frames, tasks {', '.join(t.name for t in self.tasks)}"]
        for task in self.tasks:
            lines.append(f"  {task.name} ({task.kind.value}): {', '.join(task.classes) or 'one value'}")
        if self.mapping:
            lines += ["class map:", *self.mapping]
        if self.pixel_share:
            shares = ", ".join(f"{name} {share:.1%}" for name, share in self.pixel_share.items())
            lines.append(f"pixels: {shares}")
        lines += self.boxes.lines()
        lines += [f"{what}: {count}" for what, count in self.counts.items()]
        return lines + self.notes


def check_destination(src: Path, dst: Path) -> None:
    """An import writes a new folder outside its source: the source is never changed, nothing is overwritten."""
    if dst.exists():
        raise OutputError(f"import destination {dst} exists: expected a new folder; choose another DST or remove it")
    if dst.resolve().is_relative_to(src.resolve()) and src.is_dir():
        raise OutputError(f"import destination {dst} is inside the source {src}: importing never writes into it")


def _image_suffix(image: Path | np.ndarray) -> str:
    if isinstance(image, Path) and image.suffix.lower() in IMAGE_SUFFIXES:
        return image.suffix.lower()
    return ".png"


def _write_image(image: Path | np.ndarray, target: Path) -> tuple[int, int]:
    """Copy a file as it is (no re-encoding: JPEGs lose nothing more), or encode pixels; returns (H, W)."""
    if isinstance(image, Path):
        pixels = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if pixels is None:
            raise DataError(f"image {image} cannot be read: expected a PNG, JPEG or BMP file OpenCV can decode")
        if image.suffix.lower() in IMAGE_SUFFIXES:
            shutil.copyfile(image, target)
        elif not cv2.imwrite(str(target), pixels):
            raise OutputError(f"cannot write image {target}")
        return pixels.shape[:2]
    if not cv2.imwrite(str(target), image):
        raise OutputError(f"cannot write image {target}")
    return image.shape[:2]


def _import_tasks(source: Source, mapped: MappedClasses | None, labels: LabelTable | None) -> tuple[TaskSpec, ...]:
    tasks = []
    if mapped is not None:
        tasks.append(TaskSpec(SEGMENTATION_TASK, TaskKind.SEGMENTATION, mapped.target))
    for name, names in source.label_tasks.items():
        if name in source.mapped_labels and mapped is not None:
            names = tuple(mapped.label_names(list(names)))
        if names:
            tasks.append(TaskSpec(name, TaskKind.MULTILABEL, names))
    if labels is not None:
        tasks += labels.tasks
    return tuple(tasks)


@dataclass
class _BoxTask:
    """The detection task of an import: the class map applied to the box classes, the rules, boxes/ written."""

    classes: tuple[str, ...]
    targets: dict[str, str | None]  # source class → target class; None: the map dropped or ignored it
    counts: BoxCounts = field(default_factory=BoxCounts)
    unmapped: int = 0  # boxes of classes the map dropped or ignored

    @classmethod
    def of(cls, source: Source, class_map: ClassMap) -> _BoxTask | None:
        if source.box_classes is None:
            return None
        classes, targets = class_map.box_classes(source.box_classes)
        if not classes:
            raise DataError(f"class map {class_map.where} drops or ignores every box class: expected one to keep")
        return cls(classes, targets)

    def write(self, folder: Path, sample: SourceSample, size: tuple[int, int]) -> str:
        """boxes/<stem>.json, and its labels.csv cell ('' when the sample's boxes were not labelled)."""
        if sample.boxes is None:
            return ""
        kept = []
        for box in sample.boxes:
            if box.name not in self.targets:
                raise DataError(f"{box.where} has class {box.name!r}: expected one of {', '.join(self.targets)}")
            target = self.targets[box.name]
            if target is None:
                self.unmapped += 1
                continue
            fitted = fit_box(box.box, size[1], size[0], box.where, self.counts)
            if fitted is not None:
                kept.append((target, fitted))
        write_boxes(folder / f"{sample.name}.json", kept)
        return f"{sample.name}.json"


def _with_detection(tasks: tuple[TaskSpec, ...], boxes: _BoxTask | None) -> tuple[TaskSpec, ...]:
    """The import's tasks, then its detection task where it has boxes; two tasks of one name are an error."""
    if boxes is not None:
        tasks = (*tasks, detection_task(DETECTION_TASK, boxes.classes))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"two tasks would both be named {twice[0]!r}: rename the --labels column")
    return tasks


def write_import(source: Source, dst: Path, class_map: ClassMap, labels: LabelTable | None) -> ImportReport:
    """Apply the map, join the labels, write the folder format whole (or nothing), and report.

    (Over 60 lines: one pass over the samples that writes each as it comes, so a dataset of any size
    imports in constant memory; the rows of labels.csv are only complete after the last sample.)
    """
    box_classes = source.box_classes or ()
    mapped = class_map.apply(source.classes, also=box_classes) if source.classes is not None else None
    if mapped is None and not box_classes and class_map.entries:
        raise DataError(f"class map {class_map.where} given, but this source has no classes to map")
    if mapped is None and box_classes:
        class_map.check_known(box_classes)
    tasks = _import_tasks(source, mapped, labels)
    boxes = _BoxTask.of(source, class_map)
    if not tasks and boxes is None:
        raise DataError("nothing to import: the source has no masks, boxes or labels; give image labels with --labels")
    tasks = _with_detection(tasks, boxes)
    joined = labels.tasks if labels is not None else ()  # the --labels table's tasks fill their own cells
    label_tasks = {t.name: t for t in tasks if t.name in source.label_tasks and t not in joined}
    rows: list[dict[str, str]] = []
    stems: set[str] = set()
    pixels = np.zeros(len(mapped.target) if mapped else 0, dtype=np.int64)
    with staged_folder(dst) as staging:
        (staging / "images").mkdir()
        if mapped is not None:
            (staging / "masks").mkdir()
        if boxes is not None:
            (staging / BOXES_DIR).mkdir()
        for sample in source.samples:
            image_name = sample.name + _image_suffix(sample.image)
            if sample.name in stems:
                raise DataError(f"two samples would both be written as {sample.name}: expected unique image names")
            stems.add(sample.name)
            size = _write_image(sample.image, staging / "images" / image_name)
            row = {"image": image_name, "split": sample.split, "group": sample.group}
            if mapped is not None:
                row[SEGMENTATION_TASK] = ""
                if sample.mask is not None:
                    if sample.mask.shape != size:
                        raise DataError(
                            f"mask of {sample.name} is {sample.mask.shape[0]}×{sample.mask.shape[1]}, its image "
                            f"{size[0]}×{size[1]}: expected a mask exactly as large as its image"
                        )
                    ids = mapped.mask(sample.mask)
                    write_mask(staging / "masks" / f"{sample.name}.png", ids, len(mapped.target))
                    pixels += np.bincount(ids[ids != IGNORE_PIXEL], minlength=len(mapped.target))
                    row[SEGMENTATION_TASK] = f"{sample.name}.png"
            if boxes is not None:
                row[DETECTION_TASK] = boxes.write(staging / BOXES_DIR, sample, size)
            for name, task in label_tasks.items():
                present = sample.labels.get(name, [])
                if name in source.mapped_labels and mapped is not None:
                    present = mapped.label_names(present)
                row[name] = kind_of(task).format_label(task, np.isin(task.classes, present).astype(np.float32))
            if labels is not None:
                row.update(labels.cells(sample.name, image_name))
            rows.append(row)
        if not rows:
            raise DataError("the source holds no samples: expected at least one labelled image")
        if labels is not None:
            labels.check_joined([row["image"] for row in rows])
        _write_labels(staging / "labels.csv", rows, [t.name for t in tasks])
        (staging / "tasks.json").write_text(tasks_to_json(tasks) + "\n", encoding="utf-8")
    total = pixels.sum()
    share = {name: float(count / total) for name, count in zip(mapped.target, pixels)} if mapped and total else {}
    counts = {what: count for what, count in source.counts.items() if count}
    if boxes is not None and boxes.unmapped:
        counts["boxes of classes the map drops or ignores, left out"] = boxes.unmapped
    report_boxes = boxes.counts if boxes is not None else BoxCounts()
    return ImportReport(
        dst, len(rows), tasks, mapped.lines() if mapped else [], share, source.notes, report_boxes, counts
    )


def _write_labels(path: Path, rows: list[dict[str, str]], tasks: list[str]) -> None:
    """labels.csv: image, the tasks, then split and group where any sample has one."""
    columns = ["image", *tasks]
    columns += [c for c in ("split", "group") if any(row.get(c) for row in rows)]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in columns])
