"""What every importer hands over, and the one writer that turns it into the folder format.

An importer reads a labelling tool's files and yields samples: an image, a mask of *source* class ids and
image-level labels by name. The writer applies the class map, joins image-level labels from a CSV or
JSON file, and writes images/, masks/, labels.csv and tasks.json into a staging folder that becomes the
destination only once every sample is written (`edgemtl.data.folder.staged_folder`). So each format's
module is only about reading its format, and all of them check, map and report alike.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.folder import staged_folder
from edgemtl.data.importers.classmap import ClassMap, MappedClasses
from edgemtl.data.importers.labels import LabelTable
from edgemtl.data.manifest import IMAGE_SUFFIXES
from edgemtl.data.masks import write_mask
from edgemtl.errors import DataError, OutputError
from edgemtl.kinds import kind_of
from edgemtl.tasks import IGNORE_PIXEL, TaskKind, TaskSpec, tasks_to_json

SEGMENTATION_TASK = "segmentation"  # the mask task an import writes


@dataclass
class SourceSample:
    """One frame as a tool labelled it. `mask` holds indices into `Source.classes`, -1 where unlabelled."""

    name: str  # the stem it is written under: unique within the import
    image: Path | np.ndarray  # a file to copy as it is, or decoded BGR pixels (e.g. labelme's imageData)
    mask: np.ndarray | None = None  # (H, W) integer source class ids; None: the format has no mask here
    labels: dict[str, list[str]] = field(default_factory=dict)  # multilabel task → names present
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


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote and how it mapped the classes."""

    destination: Path
    frames: int
    tasks: tuple[TaskSpec, ...]
    mapping: list[str]
    pixel_share: dict[str, float]  # mask class → share of labelled pixels
    notes: list[str]

    def lines(self) -> list[str]:
        lines = [f"wrote {self.destination}: {self.frames} frames, tasks {', '.join(t.name for t in self.tasks)}"]
        for task in self.tasks:
            lines.append(f"  {task.name} ({task.kind.value}): {', '.join(task.classes) or 'one value'}")
        if self.mapping:
            lines += ["class map:", *self.mapping]
        if self.pixel_share:
            shares = ", ".join(f"{name} {share:.1%}" for name, share in self.pixel_share.items())
            lines.append(f"pixels: {shares}")
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


def write_import(source: Source, dst: Path, class_map: ClassMap, labels: LabelTable | None) -> ImportReport:
    """Apply the map, join the labels, write the folder format whole (or nothing), and report.

    (Over 60 lines: one pass over the samples that writes each as it comes, so a dataset of any size
    imports in constant memory; the rows of labels.csv are only complete after the last sample.)
    """
    mapped = class_map.apply(source.classes) if source.classes is not None else None
    if mapped is None and class_map.entries:
        raise DataError(f"class map {class_map.where} given, but this source has no mask classes to map")
    tasks = _import_tasks(source, mapped, labels)
    if not tasks:
        raise DataError("nothing to import: the source has no masks or labels; give image labels with --labels")
    joined = labels.tasks if labels is not None else ()  # the --labels table's tasks fill their own cells
    label_tasks = {t.name: t for t in tasks if t.name in source.label_tasks and t not in joined}
    rows: list[dict[str, str]] = []
    stems: set[str] = set()
    pixels = np.zeros(len(mapped.target) if mapped else 0, dtype=np.int64)
    with staged_folder(dst) as staging:
        (staging / "images").mkdir()
        if mapped is not None:
            (staging / "masks").mkdir()
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
        _write_labels(staging / "labels.csv", rows, tasks)
        (staging / "tasks.json").write_text(tasks_to_json(tasks) + "\n", encoding="utf-8")
    total = pixels.sum()
    share = {name: float(count / total) for name, count in zip(mapped.target, pixels)} if mapped and total else {}
    return ImportReport(dst, len(rows), tasks, mapped.lines() if mapped else [], share, source.notes)


def _write_labels(path: Path, rows: list[dict[str, str]], tasks: tuple[TaskSpec, ...]) -> None:
    """labels.csv: image, the tasks, then split and group where any sample has one."""
    columns = ["image", *(t.name for t in tasks)]
    columns += [c for c in ("split", "group") if any(row.get(c) for row in rows)]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(column, "") for column in columns])
