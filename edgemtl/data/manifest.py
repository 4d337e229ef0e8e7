"""Datasets listed sample by sample: CSV / JSON manifests, and the checking and loading they share with
the folder format (whose labels.csv is a manifest with fixed places for images and masks).

A manifest names, per sample, an image, its targets and, for a segmentation task, a mask, with paths
relative to the manifest, so a dataset can keep whatever layout it already has:

    manifest.csv     header `image,<task>,...`, one column per task:
                       classification  a class name (a class index is accepted too)
                       multilabel      the label names present, joined by `;`; a lone `-`: none present
                       regression      a number, or the task's K numbers joined by `;`
                       segmentation    the mask's path: an indexed or greyscale PNG of class ids
                     with the task list in tasks.json beside the manifest.
    manifest.json    {"tasks": [...], "samples": [{"image": "img/0.png", "scene": "left",
                     "objects": ["cone"], "curvature": 0.4, "segmentation": "masks/0.png"}, ...]}:
                     the same values as JSON (a list of names, a number or a list of numbers); without
                     "tasks", a bare list of samples and tasks.json beside it.

Partial labels: an empty cell (CSV), or null or an absent key (JSON), means the sample has no target for
that task; it loads as the task's missing marker (edgemtl.tasks: class -1, a mask of 255, a NaN row) and
losses and metrics skip it. A listed file that does not exist is an error, never "unlabelled": a typo in a
path must not silently drop labels. Within a mask, pixels of value 255 are unlabelled.

Everything is checked before pixels are decoded, and each kind of problem is one DataError giving the count
and the first offenders, so a broken dataset of thousands of files fails in a second, not mid-training.
NumPy, OpenCV and Pillow only: no PyTorch.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.boxes import box_name, load_box_target
from edgemtl.data.dataset import ArrayDataset, check_image_size
from edgemtl.data.masks import read_mask
from edgemtl.data.rows import (
    GROUP_COLUMN,
    SPLIT_COLUMN,
    Row,
    fail_if_any,
    read_csv_rows,
    read_json,
    read_json_rows,
)
from edgemtl.errors import ConfigError, DataError
from edgemtl.kinds import kind_of
from edgemtl.kinds.base import empty_cell
from edgemtl.tasks import IGNORE_PIXEL, TaskSpec, tasks_from_json, validate_tasks

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MANIFEST_SUFFIXES = (".csv", ".json")
SPLIT_VALUES = ("train", "val", "test")
Resize = tuple[int, int] | None  # (height, width) to resize a dataset to; None: keep the stored size
Tasks = tuple[TaskSpec, ...] | None  # a dataset's tasks; None: the ones it describes itself with
Frames = list[str] | None  # only these samples, by the image name the dataset lists them under; None: all


def read_tasks_file(path: Path) -> tuple[TaskSpec, ...]:
    """A tasks.json (edgemtl.tasks.tasks_to_json); a bad one is a DataError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc}): expected a UTF-8 JSON task list") from None
    try:
        return tasks_from_json(text)
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None


def manifest_tasks(path: Path | str) -> tuple[TaskSpec, ...]:
    """The tasks of a manifest: its "tasks" (JSON), else the tasks.json beside it."""
    path = Path(path)
    if path.suffix.lower() == ".json" and path.is_file():
        data = read_json(path)
        if isinstance(data, dict) and "tasks" in data:
            try:
                return tasks_from_json(json.dumps(data["tasks"]))
            except ConfigError as exc:
                raise DataError(f"{path}: {exc}") from None
    beside = path.parent / "tasks.json"
    if not beside.is_file():
        raise DataError(f"{path} names no tasks and {beside} does not exist: expected a task list, or pass tasks")
    return read_tasks_file(beside)


# ---------------------------------------------------------------------------------------------------------
# Cells: one value → one target (edgemtl.kinds: each kind parses its own), or None when unusable


def parse_labels(source: Path, rows: list[Row], task: TaskSpec, field: str) -> np.ndarray:
    """One per-image task's targets, parsed by its kind; every unusable value reported at once."""
    kind = kind_of(task)
    parsed = [kind.parse_label(task, row.get(task.name)) for _, row in rows]
    fail_if_any(
        [f"{row.get(task.name)!r} on {where}" for (where, row), p in zip(rows, parsed, strict=True) if p is None],
        f"{kind.label_problem} in {field} {task.name!r} of {source}",
        kind.expected_label(task),
    )
    return np.asarray(parsed, dtype=kind.target_dtype)


# ---------------------------------------------------------------------------------------------------------
# A listing: the parsed list of samples, checked against the files


@dataclass(frozen=True)
class Listing:
    """What a list of samples says, checked against the files, before any pixel is decoded."""

    source: Path  # the labels.csv or manifest the samples come from, named in messages
    image_dir: Path  # image names are relative to it
    mask_dir: Path  # mask names are relative to it
    images: list[str]  # image names, as listed
    labels: dict[str, np.ndarray]  # per-image task → (N,) int64 class ids or (N, L|K) float32 rows
    masks: dict[str, list[str | None]]  # segmentation task → mask name per image, None: no mask (unlabelled)
    splits: list[str]  # train / val / test per image, "" where the split column is absent or empty
    groups: list[str]  # the group per image, "" where none
    boxes: dict[str, list[str | None]] = field(default_factory=dict)  # detection task → box file per image
    box_dir: Path | None = None  # box file names are relative to it


def text_cells(rows: list[Row], column: str) -> list[str]:
    return ["" if empty_cell(row.get(column)) else str(row.get(column)).strip() for _, row in rows]


def read_splits(source: Path, rows: list[Row], field: str = "column") -> list[str]:
    """The split column: train, val, test or empty; any other value is an error naming its row."""
    splits = text_cells(rows, SPLIT_COLUMN)
    fail_if_any(
        [f"{v!r} on {where}" for (where, _), v in zip(rows, splits, strict=True) if v not in ("", *SPLIT_VALUES)],
        f"unknown split values in {field} {SPLIT_COLUMN!r} of {source}",
        f"expected {', '.join(SPLIT_VALUES)}, or empty to let the automatic split decide",
    )
    return splits


def select_rows(source: Path, rows: list[Row], frames: list[str] | None) -> list[Row]:
    """Only the rows of the named images, in the order named (a checkpoint's validation frames)."""
    if frames is None:
        return rows
    by_image = {str(row.get("image") or "").strip(): (where, row) for where, row in rows}
    fail_if_any(
        [name for name in frames if name not in by_image],
        f"recorded frames no longer listed in {source}",
        "expected the dataset the checkpoint was validated on; pass the data to score explicitly",
    )
    return [by_image[name] for name in frames]


def _outside(root: Path, folder: Path, name: str) -> bool:
    """A listed path that leaves the dataset's folder: absolute, or climbing out with `..` (read lexically,
    so a folder the user linked in on purpose still counts as inside)."""
    return Path(name).is_absolute() or not Path(os.path.normpath(folder / name)).is_relative_to(os.path.normpath(root))


def _refuse_outside(root: Path, folder: Path, names: list[str], source: Path, allow_outside: bool) -> None:
    """Files from other people name paths: `../../etc/passwd` is refused unless the user allows it."""
    if not allow_outside:
        fail_if_any(
            [n for n in names if _outside(root, folder, n)],
            f"paths in {source} outside the dataset folder {root}",
            "expected paths inside it; pass --allow-outside-paths (allow_outside=True) to read them anyway",
        )


def parse_listing(
    source: Path,
    rows: list[Row],
    tasks: tuple[TaskSpec, ...],
    dirs: tuple[Path, Path],
    masks: dict[str, list[str | None]] | None = None,
    field: str = "column",
    *,
    root: Path | None = None,
    allow_outside: bool = False,
    box_dir: Path | None = None,
) -> Listing:
    """Rows → a Listing: targets parsed, images and masks checked to exist. dirs: (image_dir, mask_dir).

    masks: mask names already known per segmentation task (the folder format's defaults); the other
    segmentation tasks take theirs from the rows. Paths must stay inside `root` (default: the source's
    folder) unless `allow_outside`. (Over 60 lines: one pass of checks in the order a user fixes them, each
    a `fail_if_any`; split up, the parts would pass the same rows, names and folders back and forth.)
    """
    image_dir, mask_dir = dirs
    root = source.parent if root is None else root
    if not rows:
        raise DataError(f"{source} lists no images: expected at least one sample")
    images = [row.get("image") if isinstance(row.get("image"), str) else "" for _, row in rows]
    images = [name.strip() for name in images]
    _refuse_outside(root, image_dir, images, source, allow_outside)  # before anything else is read of them
    fail_if_any(
        [where for (where, _), name in zip(rows, images, strict=True) if not name],
        f"samples in {source} without an image",
        f"expected an image path in every sample, relative to {image_dir}",
    )
    fail_if_any(
        [name for name, count in Counter(images).items() if count > 1],
        f"images listed more than once in {source}",
        "expected one row per image",
    )
    fail_if_any(
        [n for n in images if Path(n).suffix.lower() not in IMAGE_SUFFIXES],
        f"images in {source} of an unsupported type",
        f"expected names ending in {', '.join(IMAGE_SUFFIXES)}",
    )
    fail_if_any(
        [n for n in images if not (image_dir / n).is_file()],
        f"images listed in {source} missing from {image_dir}",
        "expected every listed image to exist",
    )
    labels = {t.name: parse_labels(source, rows, t, field) for t in tasks if kind_of(t).per_image}
    masks = dict(masks or {})
    for task in (t for t in tasks if kind_of(t).per_pixel and t.name not in masks):
        cells = [row.get(task.name) for _, row in rows]
        fail_if_any(
            [
                f"{cell!r} on {where}"
                for (where, _), cell in zip(rows, cells, strict=True)
                if not empty_cell(cell) and not isinstance(cell, str)
            ],
            f"mask entries in {field} {task.name!r} of {source} that are not paths",
            "expected a mask path, empty if the image has no mask",
        )
        masks[task.name] = [None if empty_cell(cell) else cell.strip() for cell in cells]
        _refuse_outside(root, mask_dir, [n for n in masks[task.name] if n is not None], source, allow_outside)
        fail_if_any(
            [n for n in masks[task.name] if n is not None and not (mask_dir / n).is_file()],
            f"masks listed in {source} missing from {mask_dir}",
            "expected every listed mask to exist (leave the entry empty for an image without a mask)",
        )
    box_dir = mask_dir if box_dir is None else box_dir
    boxes = {t.name: _box_names(source, rows, images, t, box_dir, field) for t in tasks if kind_of(t).per_object}
    for names in boxes.values():
        _refuse_outside(root, box_dir, [n for n in names if n is not None], source, allow_outside)
        fail_if_any(
            [n for n in names if n is not None and not (box_dir / n).is_file()],
            f"box files listed in {source} missing from {box_dir}",
            "expected every listed box file to exist (leave the entry empty for an image without box labels)",
        )
    splits = read_splits(source, rows, field)
    groups = text_cells(rows, GROUP_COLUMN)
    return Listing(source, image_dir, mask_dir, images, labels, masks, splits, groups, boxes, box_dir)


def _box_names(
    source: Path, rows: list[Row], images: list[str], task: TaskSpec, box_dir: Path, field: str
) -> list[str | None]:
    """A detection task's box file per image: its column's cells (empty: not labelled); without the column,
    <stem>.json in `box_dir` where it exists (edgemtl.data.boxes)."""
    if not any(task.name in row for _, row in rows):
        return [box_name(n) if (box_dir / box_name(n)).is_file() else None for n in images]
    cells = [row.get(task.name) for _, row in rows]
    fail_if_any(
        [
            f"{c!r} on {where}"
            for (where, _), c in zip(rows, cells, strict=True)
            if not (empty_cell(c) or isinstance(c, str))
        ],
        f"box entries in {field} {task.name!r} of {source} that are not paths",
        "expected a box file name, empty if the image's boxes are not labelled",
    )
    return [None if empty_cell(c) else str(c).strip() for c in cells]


# ---------------------------------------------------------------------------------------------------------
# Pixels


def _shape(array: np.ndarray) -> str:
    return f"{array.shape[0]}×{array.shape[1]}"


def load_images(folder: Path, names: list[str]) -> list[np.ndarray]:
    """BGR images, or one DataError counting those OpenCV cannot decode."""
    images = [cv2.imread(str(folder / name), cv2.IMREAD_COLOR) for name in names]
    fail_if_any(
        [n for n, image in zip(names, images, strict=True) if image is None],
        f"unreadable images in {folder}",
        "expected PNG, JPEG or BMP files OpenCV can decode",
    )
    return images


def _load_masks(listing: Listing, task: TaskSpec, images: list[np.ndarray]) -> list[np.ndarray]:
    """Masks, checked one by one (readable, ids in range, same size as the image) and reported together.

    An image without a mask gets one of IGNORE_PIXEL: nothing of it is labelled for this task.
    """
    names = listing.masks[task.name]
    masks: list[np.ndarray] = []
    unusable: list[str] = []
    for name, image in zip(names, images, strict=True):
        if name is None:
            masks.append(np.full(image.shape[:2], IGNORE_PIXEL, dtype=np.uint8))
            continue
        try:
            masks.append(read_mask(listing.mask_dir / name))
        except DataError as exc:
            unusable.append(str(exc))
            masks.append(np.zeros(image.shape[:2], dtype=np.uint8))
    if unusable:
        raise DataError(f"{len(unusable)} unusable masks in {listing.mask_dir}, the first: {unusable[0]}")
    k = len(task.classes)
    highest = [int(m[m != IGNORE_PIXEL].max(initial=0)) for m in masks]
    fail_if_any(
        [f"{n}, max id {h}" for n, h in zip(names, highest, strict=True) if h >= k],
        f"masks in {listing.mask_dir} with class ids ≥ {k}",
        f"expected ids 0..{k - 1} ({', '.join(task.classes)}), or {IGNORE_PIXEL} where unlabelled",
    )
    fail_if_any(
        [
            f"{n} is {_shape(m)}, its image {_shape(i)}"
            for n, m, i in zip(names, masks, images, strict=True)
            if m.shape != i.shape[:2]
        ],
        f"masks in {listing.mask_dir} of another size than their image",
        "expected a mask exactly as large as its image",
    )
    return masks


def _common_size(listing: Listing, images: list[np.ndarray]) -> tuple[int, int]:
    first, names = images[0], listing.images
    fail_if_any(
        [
            f"{n} is {_shape(i)}, {names[0]} {_shape(first)}"
            for n, i in zip(names, images, strict=True)
            if i.shape[:2] != first.shape[:2]
        ],
        f"images in {listing.image_dir} differ in size from the first",
        "expected one size, or pass size=(height, width) to resize them",
    )
    return int(first.shape[0]), int(first.shape[1])


def load_listing(listing: Listing, tasks: tuple[TaskSpec, ...], size: tuple[int, int] | None) -> ArrayDataset:
    """Decode, check and resize what a listing names into an ArrayDataset.

    Images are resized with area averaging, masks with nearest neighbour (class ids must never be blended).
    """
    images = originals = load_images(listing.image_dir, listing.images)
    masks = {t.name: _load_masks(listing, t, images) for t in tasks if kind_of(t).per_pixel}
    if size is not None:
        height, width = check_image_size(size)
        images = [cv2.resize(i, (width, height), interpolation=cv2.INTER_AREA) for i in images]
        masks = {
            name: [cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in task_masks]
            for name, task_masks in masks.items()
        }
    else:
        _common_size(listing, images)
    targets = {**listing.labels, **{name: np.stack(task_masks) for name, task_masks in masks.items()}}
    for task in (t for t in tasks if t.name in listing.boxes):
        paths = [None if n is None else listing.box_dir / n for n in listing.boxes[task.name]]
        sizes = [image.shape[:2] for image in originals]
        targets[task.name] = np.stack([load_box_target(p, task, s, size) for p, s in zip(paths, sizes, strict=True)])
    info = {"image": listing.images, "split": listing.splits, "group": listing.groups}
    dataset = ArrayDataset(np.stack(images), targets, {k: np.asarray(v, dtype=str) for k, v in info.items()})
    dataset.check_against(tasks)
    return dataset


def load_manifest(
    path: Path | str, tasks: Tasks = None, size: Resize = None, frames: Frames = None, *, allow_outside: bool = False
) -> ArrayDataset:
    """Read the dataset a manifest.csv / manifest.json lists, resized to size (height, width) if given.

    Tasks default to the manifest's own ("tasks" in JSON) or the tasks.json beside it. frames: only these
    images (by the name they are listed under), e.g. the ones a checkpoint records as its validation set.
    Listed paths must stay in the manifest's folder unless `allow_outside`.
    """
    path = Path(path)
    size = None if size is None else check_image_size(size)
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise DataError(f"{path} is not a manifest: expected a {' or '.join(MANIFEST_SUFFIXES)} file")
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist: expected a {path.suffix} file listing the samples")
    tasks = validate_tasks(manifest_tasks(path) if tasks is None else tuple(tasks))
    csv_file = path.suffix.lower() == ".csv"
    rows = read_csv_rows(path, ["image", *(t.name for t in tasks)]) if csv_file else read_json_rows(path, tasks)
    rows = select_rows(path, rows, frames)
    listing = parse_listing(
        path,
        rows,
        tasks,
        (path.parent, path.parent),
        field="column" if csv_file else "key",
        allow_outside=allow_outside,
    )
    return load_listing(listing, tasks, size)
