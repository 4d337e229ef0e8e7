"""The on-disk dataset format: a plain folder anyone can fill with their own frames, and read back.

    root/
      images/<stem>.png|.jpg|.jpeg|.bmp   frames, BGR as OpenCV reads them, any size (the loader resizes)
      masks/<stem>.png                     indexed or greyscale PNG of class ids, one per image
                                           (only when a segmentation task exists)
      labels.csv                           header `image,<task>,...`: the file name in images/, then one
                                           column per classification task holding the class name
                                           (a class index is accepted too)
      tasks.json                           the task list (edgemtl.tasks.tasks_to_json): self-describing

Why validate before decoding pixels: a dataset of thousands of frames with one missing mask should fail
in a second with a one-line message naming that file and how many more are affected, not after minutes
of loading or halfway through training. NumPy, OpenCV and Pillow only: no PyTorch.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.dataset import ArrayDataset, check_image_size
from edgemtl.data.masks import read_mask, write_mask
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind, TaskSpec, tasks_from_json, tasks_to_json, validate_tasks

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_SUPPORTED_KINDS = (TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION)


def _fail_if_any(bad: list[str], what: str, expected: str) -> None:
    """One line for a whole kind of problem: how many files, the first of them, what was expected."""
    if bad:
        raise DataError(f"{len(bad)} {what} (first: {bad[0]}): {expected}")


def _supported_tasks(tasks: tuple[TaskSpec, ...]) -> tuple[TaskSpec, ...]:
    tasks = validate_tasks(tasks)
    for task in tasks:
        if task.kind not in _SUPPORTED_KINDS:
            raise ConfigError(
                f"task {task.name!r} is a {task.kind.value} task: not supported by the folder format yet "
                "(expected classification or segmentation)"
            )
    segmentation = [t.name for t in tasks if t.kind is TaskKind.SEGMENTATION]
    if len(segmentation) > 1:
        raise ConfigError(
            f"tasks {segmentation} are all segmentation tasks: the folder format holds one mask per image, "
            "so at most one segmentation task"
        )
    return tasks


def _segmentation_task(tasks: tuple[TaskSpec, ...]) -> TaskSpec | None:
    return next((t for t in tasks if t.kind is TaskKind.SEGMENTATION), None)


def read_tasks(root: Path | str) -> tuple[TaskSpec, ...]:
    """The task list a dataset folder describes itself with (root/tasks.json)."""
    path = Path(root) / "tasks.json"
    if not path.is_file():
        raise DataError(f"{Path(root)} has no tasks.json: expected the task list write_dataset writes, or pass tasks")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({exc}): expected a UTF-8 JSON task list") from None
    try:
        return tasks_from_json(text)
    except ConfigError as exc:
        raise DataError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _Listing:
    """What labels.csv says, checked against the files, before any pixel is decoded."""

    names: list[str]  # image file names, relative to images/
    labels: dict[str, np.ndarray]  # classification task name → (N,) int64 class ids


def _class_id(value: str, classes: tuple[str, ...]) -> int | None:
    """A class given by name, or by index as a fallback; None when it is neither."""
    value = value.strip()
    if value in classes:
        return classes.index(value)
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    return None


def _read_rows(labels_path: Path, tasks: tuple[TaskSpec, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for every non-empty row, after checking the header names each needed column."""
    needed = ["image", *(t.name for t in tasks if t.kind is TaskKind.CLASSIFICATION)]
    try:
        with labels_path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row:  # DictReader files surplus fields under None
                    raise DataError(
                        f"{labels_path} line {reader.line_num} has {len(header) + len(row[None])} fields: "
                        f"expected {len(header)}, as in the header"
                    )
                if any((v or "").strip() for v in row.values()):
                    rows.append((reader.line_num, row))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {labels_path} ({exc}): expected a UTF-8 CSV file") from None
    missing = [name for name in needed if name not in header]
    if missing:
        raise DataError(f"{labels_path} has columns {header}, lacking {missing}: expected header {','.join(needed)}")
    if not rows:
        raise DataError(f"{labels_path} lists no images: expected at least one row under the header")
    return rows


def _list_dataset(root: Path, tasks: tuple[TaskSpec, ...]) -> _Listing:
    images_dir, labels_path = root / "images", root / "labels.csv"
    if not images_dir.is_dir():
        raise DataError(f"{root} has no images/ folder: expected images/<stem>{'|'.join(IMAGE_SUFFIXES)}")
    if not labels_path.is_file():
        raise DataError(f"{root} has no labels.csv: expected a CSV with header image,<task>,...")
    rows = _read_rows(labels_path, tasks)
    names = [(row.get("image") or "").strip() for _, row in rows]
    _fail_if_any(
        [name for name, count in Counter(names).items() if count > 1],
        f"images listed more than once in {labels_path}",
        "expected one row per image",
    )
    _fail_if_any(
        [n for n in names if Path(n).suffix.lower() not in IMAGE_SUFFIXES],
        f"images in {labels_path} of an unsupported type",
        f"expected names ending in {', '.join(IMAGE_SUFFIXES)}",
    )
    _fail_if_any(
        [n for n in names if not (images_dir / n).is_file()],
        f"images listed in {labels_path} missing from {images_dir}",
        "expected every listed image to exist",
    )
    return _Listing(names, _parse_labels(labels_path, rows, tasks))


def _parse_labels(
    labels_path: Path, rows: list[tuple[int, dict[str, str]]], tasks: tuple[TaskSpec, ...]
) -> dict[str, np.ndarray]:
    labels: dict[str, np.ndarray] = {}
    for task in (t for t in tasks if t.kind is TaskKind.CLASSIFICATION):
        ids = [_class_id(row.get(task.name) or "", task.classes) for _, row in rows]
        _fail_if_any(
            [
                f"{(row.get(task.name) or '').strip()!r} on line {line}"
                for (line, row), i in zip(rows, ids, strict=True)
                if i is None
            ],
            f"unknown class names in column {task.name!r} of {labels_path}",
            f"expected one of {', '.join(task.classes)} (or an index 0..{len(task.classes) - 1})",
        )
        labels[task.name] = np.asarray(ids, dtype=np.int64)
    return labels


def _mask_name(image_name: str) -> str:
    return Path(image_name).with_suffix(".png").as_posix()


def _check_masks_exist(root: Path, names: list[str], task: TaskSpec) -> None:
    masks_dir = root / "masks"
    _fail_if_any(
        [n for n in names if not (masks_dir / _mask_name(n)).is_file()],
        f"images in {root / 'images'} without a mask in {masks_dir}",
        f"expected one <stem>.png per image for segmentation task {task.name!r}",
    )
    stems = Counter(_mask_name(n) for n in names)
    _fail_if_any(
        [n for n in names if stems[_mask_name(n)] > 1],
        f"images in {root / 'images'} sharing a stem, hence a mask",
        "expected distinct stems",
    )


def _shape(array: np.ndarray) -> str:
    return f"{array.shape[1]}×{array.shape[0]}"


def _load_images(folder: Path, names: list[str]) -> list[np.ndarray]:
    images = [cv2.imread(str(folder / name), cv2.IMREAD_COLOR) for name in names]
    _fail_if_any(
        [n for n, image in zip(names, images, strict=True) if image is None],
        f"unreadable images in {folder}",
        "expected PNG, JPEG or BMP files OpenCV can decode",
    )
    return images


def load_frames(root: Path | str, size: tuple[int, int], limit: int | None = None) -> np.ndarray:
    """Unlabelled frames for int8 calibration: root/images/ of a dataset, or any folder of images.

    Frames must already be at `size` (height, width): calibrating on resized frames would measure
    activation ranges the deployed model never sees, so a wrong size is an error, not a resize.
    """
    root = Path(root)
    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"calibration folder {root} does not exist: expected a folder of images")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not names:
        raise DataError(f"calibration folder {folder} holds no images: expected {', '.join(IMAGE_SUFFIXES)} files")
    images = _load_images(folder, names)
    height, width = check_image_size(size)
    _fail_if_any(
        [n for n, image in zip(names, images, strict=True) if image.shape[:2] != (height, width)],
        f"calibration images in {folder} are not {height}x{width}",
        "resize them to the export's input size",
    )
    return np.stack(images)


def _load_masks(root: Path, names: list[str], images: list[np.ndarray], task: TaskSpec) -> list[np.ndarray]:
    """Masks, checked one by one (readable, ids in range, same size as the image) and reported together."""
    masks_dir = root / "masks"
    masks: list[np.ndarray] = []
    unusable: list[str] = []
    for name in names:
        try:
            masks.append(read_mask(masks_dir / _mask_name(name)))
        except DataError as exc:
            unusable.append(str(exc))
            masks.append(np.zeros((0, 0), dtype=np.uint8))
    if unusable:
        raise DataError(f"{len(unusable)} unusable masks in {masks_dir}, the first: {unusable[0]}")
    k = len(task.classes)
    _fail_if_any(
        [
            f"{_mask_name(n)}, max id {int(m.max())}"
            for n, m in zip(names, masks, strict=True)
            if m.size and int(m.max()) >= k
        ],
        f"masks in {masks_dir} with class ids ≥ {k}",
        f"expected ids 0..{k - 1} ({', '.join(task.classes)})",
    )
    _fail_if_any(
        [
            f"{_mask_name(n)} is {_shape(m)}, its image {_shape(i)}"
            for n, m, i in zip(names, masks, images, strict=True)
            if m.shape != i.shape[:2]
        ],
        f"masks in {masks_dir} of another size than their image",
        "expected a mask exactly as large as its image",
    )
    return masks


def _common_size(root: Path, names: list[str], images: list[np.ndarray]) -> tuple[int, int]:
    first = images[0].shape[:2]
    _fail_if_any(
        [
            f"{n} is {_shape(i)}, {names[0]} {_shape(images[0])}"
            for n, i in zip(names, images, strict=True)
            if i.shape[:2] != first
        ],
        f"images in {root / 'images'} differ in size from the first",
        "expected one size, or pass size=(height, width) to resize them",
    )
    return int(first[0]), int(first[1])


def load_folder(
    root: Path | str, tasks: tuple[TaskSpec, ...] | None = None, size: tuple[int, int] | None = None
) -> ArrayDataset:
    """Read a dataset folder into memory, resized to size (height, width) if given.

    Tasks default to root/tasks.json. Images are resized with area averaging, masks with nearest
    neighbour (class ids must never be blended).
    """
    root = Path(root)
    size = None if size is None else check_image_size(size)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist: expected a folder with images/ and labels.csv")
    tasks = _supported_tasks(read_tasks(root) if tasks is None else tuple(tasks))
    listing = _list_dataset(root, tasks)
    segmentation = _segmentation_task(tasks)
    if segmentation is not None:
        _check_masks_exist(root, listing.names, segmentation)
    images = _load_images(root / "images", listing.names)
    masks = _load_masks(root, listing.names, images, segmentation) if segmentation is not None else []
    height, width = size or _common_size(root, listing.names, images)
    if size is not None:
        images = [cv2.resize(i, (width, height), interpolation=cv2.INTER_AREA) for i in images]
        masks = [cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in masks]
    targets = dict(listing.labels)
    if segmentation is not None:
        targets[segmentation.name] = np.stack(masks)
    dataset = ArrayDataset(np.stack(images), targets)
    dataset.check_against(tasks)
    return dataset


# ---------------------------------------------------------------------------------------------------------
# Writing


def _check_target(root: Path, overwrite: bool) -> None:
    """Refuse to clobber anything that was not asked for, or that does not look like a dataset."""
    if not root.exists():
        return
    if not root.is_dir():
        raise OutputError(f"{root} exists and is not a folder: expected a new or empty folder")
    entries = {entry.name for entry in root.iterdir()}
    if entries and not overwrite:
        raise OutputError(f"{root} exists and is not empty: expected a new or empty folder (or overwrite=True)")
    if entries and not entries & {"labels.csv", "tasks.json"}:
        raise OutputError(
            f"{root} is not empty and holds no labels.csv or tasks.json: overwrite only replaces a dataset folder"
        )


def _write_contents(folder: Path, dataset: ArrayDataset, tasks: tuple[TaskSpec, ...]) -> None:
    width = max(6, len(str(len(dataset) - 1)))
    names = [f"{i:0{width}d}.png" for i in range(len(dataset))]
    (folder / "images").mkdir()
    for name, image in zip(names, dataset.images, strict=True):
        if not cv2.imwrite(str(folder / "images" / name), image):
            raise OutputError(f"cannot write image {folder / 'images' / name}")
    segmentation = _segmentation_task(tasks)
    if segmentation is not None:
        (folder / "masks").mkdir()
        for name, mask in zip(names, dataset.targets[segmentation.name], strict=True):
            write_mask(folder / "masks" / name, mask, len(segmentation.classes))
    classification = [t for t in tasks if t.kind is TaskKind.CLASSIFICATION]
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image", *(t.name for t in classification)])
        for i, name in enumerate(names):
            writer.writerow([name, *(t.classes[int(dataset.targets[t.name][i])] for t in classification)])
    (folder / "tasks.json").write_text(tasks_to_json(tasks) + "\n", encoding="utf-8")


def _swap_in(staging: Path, root: Path) -> None:
    """Put the finished folder in place with renames, so root is never half written."""
    if not root.exists():
        os.rename(staging, root)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
    os.rename(root, retired / root.name)
    os.rename(staging, root)
    shutil.rmtree(retired, ignore_errors=True)


def write_dataset(
    root: Path | str,
    dataset: ArrayDataset,
    tasks: tuple[TaskSpec, ...] = NAVIGATION_TASKS,
    overwrite: bool = False,
) -> Path:
    """Write a dataset in the folder format and return root.

    Everything goes to a hidden sibling folder first and is renamed into place at the end: an
    interrupted write leaves no folder that looks like a complete dataset.
    """
    root = Path(root)
    tasks = _supported_tasks(tuple(tasks))
    dataset.check_against(tasks)
    if len(dataset) == 0:
        raise DataError(f"dataset for {root} is empty: expected at least one image")
    _check_target(root, overwrite)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    except OSError as exc:
        raise OutputError(f"cannot create a folder next to {root}: {exc.strerror or exc}") from None
    try:
        _write_contents(staging, dataset, tasks)
        _swap_in(staging, root)
    except OSError as exc:
        raise OutputError(f"cannot write dataset {root}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root
