"""The on-disk dataset format: a plain folder anyone can fill with their own frames, and read back.

    root/
      images/<stem>.png|.jpg|.jpeg|.bmp   frames, BGR as OpenCV reads them, any size (the loader resizes)
      masks/<stem>.png                     indexed or greyscale PNG of class ids, one per image
                                           (only when a segmentation task exists; 255 = unlabelled pixel)
      boxes/<stem>.json                    a detection task's boxes, [{"class": name, "box": [x1, y1, x2, y2]}],
                                           pixels of the image file; `[]`: labelled, no objects; no file (or
                                           an empty cell in the task's optional labels.csv column): not
                                           labelled (edgemtl.data.boxes)
      labels.csv                           header `image,<task>,...`: the file name in images/, then one
                                           column per classification, multilabel or regression task:
                                             classification  the class name (a class index is accepted too)
                                             multilabel      label names joined by `;`, a lone `-` for none
                                             regression      a number, or K numbers joined by `;`
                                           and optionally one for the segmentation task: the mask's name
                                           in masks/ (without that column: masks/<stem>.png for every image)
      tasks.json                           the task list (edgemtl.tasks.tasks_to_json): self-describing

Partial labels: an empty cell means "this image has no target for this task" (it loads as the task's
missing marker: class -1, a NaN row, a mask of 255, which losses and metrics skip). An image without a
mask is allowed only where labels.csv has the segmentation column with an empty cell: without the column,
a missing masks/<stem>.png is an error, because a forgotten mask must not silently become "unlabelled".

labels.csv is a manifest (edgemtl.data.manifest) whose paths are relative to images/ and masks/, so both
share one parser and one set of checks; `load_dataset` takes either a folder or a manifest file.
NumPy, OpenCV and Pillow only: no PyTorch.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.boxes import BOXES_DIR, write_box_file
from edgemtl.data.dataset import ArrayDataset, check_image_size
from edgemtl.data.manifest import (
    IMAGE_SUFFIXES,
    MANIFEST_SUFFIXES,
    Frames,
    Resize,
    Tasks,
    load_images,
    load_listing,
    load_manifest,
    manifest_tasks,
    parse_listing,
    read_tasks_file,
    select_rows,
)
from edgemtl.data.masks import write_mask
from edgemtl.data.rows import fail_if_any, read_csv_rows
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.kinds import kind_of
from edgemtl.tasks import IGNORE_PIXEL, NAVIGATION_TASKS, TaskSpec, tasks_to_json, validate_tasks


def _folder_tasks(tasks: tuple[TaskSpec, ...]) -> tuple[TaskSpec, ...]:
    tasks = validate_tasks(tasks)
    segmentation = [t.name for t in tasks if kind_of(t).per_pixel]
    if len(segmentation) > 1:
        raise ConfigError(
            f"tasks {segmentation} are all segmentation tasks: the folder format holds one mask per image, "
            "so at most one segmentation task (a manifest can list one mask per task)"
        )
    return tasks


def _segmentation_task(tasks: tuple[TaskSpec, ...]) -> TaskSpec | None:
    return next((t for t in tasks if kind_of(t).per_pixel), None)


def read_tasks(path: Path | str) -> tuple[TaskSpec, ...]:
    """The task list a dataset describes itself with: root/tasks.json of a folder, or a manifest's tasks."""
    path = Path(path)
    if path.suffix.lower() in MANIFEST_SUFFIXES and not path.is_dir():
        return manifest_tasks(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist: expected a dataset folder or a manifest file")
    tasks_file = path / "tasks.json"
    if not tasks_file.is_file():
        raise DataError(f"{path} has no tasks.json: expected the task list write_dataset writes, or pass tasks")
    return read_tasks_file(tasks_file)


# ---------------------------------------------------------------------------------------------------------
# Reading


def _mask_name(image_name: str) -> str:
    return Path(image_name).with_suffix(".png").as_posix()


def _check_default_masks(root: Path, names: list[str], task: TaskSpec) -> None:
    """masks/<stem>.png for every image, each required: labels.csv has no column naming them."""
    masks_dir = root / "masks"
    fail_if_any(
        [n for n in names if not (masks_dir / _mask_name(n)).is_file()],
        f"images in {root / 'images'} without a mask in {masks_dir}",
        f"expected one <stem>.png per image for segmentation task {task.name!r} (or a {task.name} column in "
        "labels.csv, left empty for images without one)",
    )
    stems = Counter(_mask_name(n) for n in names)
    fail_if_any(
        [n for n in names if stems[_mask_name(n)] > 1],
        f"images in {root / 'images'} sharing a stem, hence a mask",
        "expected distinct stems",
    )


def load_frames(root: Path | str, size: tuple[int, int], limit: int | None = None) -> np.ndarray:
    """Unlabelled frames for int8 calibration: root/images/ of a dataset, or any folder of images.

    Frames must already be at `size` (height, width): calibrating on resized frames would measure
    activation ranges the deployed model never sees, so a wrong size is an error, not a resize.
    """
    root = Path(root)
    folder = root / "images" if (root / "images").is_dir() else root
    if not folder.is_dir():
        raise DataError(f"calibration folder {root} does not exist: expected a folder of images")
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.name[0] != ".")[:limit]
    if not names:
        raise DataError(f"calibration folder {folder} holds no images: expected {', '.join(IMAGE_SUFFIXES)} files")
    images = load_images(folder, names)
    height, width = check_image_size(size)
    fail_if_any(
        [n for n, image in zip(names, images, strict=True) if image.shape[:2] != (height, width)],
        f"calibration images in {folder} are not {height}x{width}",
        "resize them to the export's input size",
    )
    return np.stack(images)


def load_folder(
    root: Path | str, tasks: Tasks = None, size: Resize = None, frames: Frames = None, *, allow_outside: bool = False
) -> ArrayDataset:
    """Read a dataset folder into memory, resized to size (height, width) if given.

    Tasks default to root/tasks.json. Images are resized with area averaging, masks with nearest
    neighbour (class ids must never be blended). frames: only these images of labels.csv, by name.
    labels.csv may name files outside root only if `allow_outside`: a dataset from elsewhere must
    not read the rest of the disk.
    """
    root = Path(root)
    size = None if size is None else check_image_size(size)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist: expected a folder with images/ and labels.csv")
    tasks = _folder_tasks(read_tasks(root) if tasks is None else tuple(tasks))
    images_dir, labels_path = root / "images", root / "labels.csv"
    if not images_dir.is_dir():
        raise DataError(f"{root} has no images/ folder: expected images/<stem>{'|'.join(IMAGE_SUFFIXES)}")
    if not labels_path.is_file():
        raise DataError(f"{root} has no labels.csv: expected a CSV with header image,<task>,...")
    rows = read_csv_rows(labels_path, ["image", *(t.name for t in tasks if kind_of(t).per_image)])
    rows = select_rows(labels_path, rows, frames)
    segmentation = _segmentation_task(tasks)
    defaults = segmentation is not None and bool(rows) and segmentation.name not in rows[0][1]
    masks = {segmentation.name: [_mask_name((row.get("image") or "").strip()) for _, row in rows]} if defaults else {}
    dirs = (images_dir, root / "masks")
    listing = parse_listing(
        labels_path, rows, tasks, dirs, masks, root=root, allow_outside=allow_outside, box_dir=root / BOXES_DIR
    )
    if defaults:
        _check_default_masks(root, listing.images, segmentation)
    return load_listing(listing, tasks, size)


def load_dataset(
    path: Path | str, tasks: Tasks = None, size: Resize = None, frames: Frames = None, *, allow_outside: bool = False
) -> ArrayDataset:
    """Any on-disk dataset: a folder in the folder format, or a manifest.csv / manifest.json file.

    The one entry point for the CLI and the trainer; tasks default to the dataset's own (read_tasks).
    frames: only these images, by the name the dataset lists them under. The dataset remembers where it
    came from (its origin), so the frames that validate a run can be found again.
    allow_outside: let its listing name files outside its folder.
    """
    path = Path(path)
    if not path.exists() and path.suffix.lower() not in MANIFEST_SUFFIXES:  # a manifest says so itself
        raise DataError(f"dataset {path} does not exist: expected a dataset folder or a manifest file")
    if path.is_dir():
        dataset = load_folder(path, tasks, size, frames, allow_outside=allow_outside)
    elif path.suffix.lower() in MANIFEST_SUFFIXES:
        dataset = load_manifest(path, tasks, size, frames, allow_outside=allow_outside)
    else:
        dataset = None
    if dataset is not None:
        dataset.origin = {"data": str(path.resolve())}
        return dataset
    raise DataError(
        f"dataset {path} is neither a folder nor a manifest: expected a dataset folder or an existing "
        f"{' / '.join(MANIFEST_SUFFIXES)} manifest file"
    )


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
    """images/, masks/, labels.csv, tasks.json. An all-unlabelled mask is written as an empty cell of a
    segmentation column instead of a file, so partial datasets read back exactly and stay small."""
    width = max(6, len(str(len(dataset) - 1)))
    names = [f"{i:0{width}d}.png" for i in range(len(dataset))]
    (folder / "images").mkdir()
    for name, image in zip(names, dataset.images, strict=True):
        if not cv2.imwrite(str(folder / "images" / name), image):
            raise OutputError(f"cannot write image {folder / 'images' / name}")
    columns = [t for t in tasks if kind_of(t).per_image]
    cells = {t.name: [kind_of(t).format_label(t, target) for target in dataset.targets[t.name]] for t in columns}
    segmentation = _segmentation_task(tasks)
    if segmentation is not None:
        (folder / "masks").mkdir()
        mask_names: list[str] = []
        for name, mask in zip(names, dataset.targets[segmentation.name], strict=True):
            if (mask == IGNORE_PIXEL).all():
                mask_names.append("")
                continue
            write_mask(folder / "masks" / name, mask, len(segmentation.classes))
            mask_names.append(name)
        if "" in mask_names:
            columns.append(segmentation)
            cells[segmentation.name] = mask_names
    detection = [t for t in tasks if kind_of(t).per_object]
    for task in detection:  # one task: boxes/<stem>.json; several: boxes/<stem>_<task>.json, named in a column
        (folder / BOXES_DIR).mkdir(exist_ok=True)
        suffix = "" if len(detection) == 1 else f"_{task.name}"
        labelled = [not np.isnan(target).all() for target in dataset.targets[task.name]]
        box_names = [f"{Path(name).stem}{suffix}.json" if known else "" for name, known in zip(names, labelled)]
        for name, target in zip(box_names, dataset.targets[task.name], strict=True):
            if name:
                write_box_file(folder / BOXES_DIR / name, task, target)
        if suffix or not all(labelled):
            columns.append(task)
            cells[task.name] = box_names
    with (folder / "labels.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["image", *(t.name for t in columns)])
        for i, name in enumerate(names):
            writer.writerow([name, *(cells[t.name][i] for t in columns)])
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


@contextmanager
def staged_folder(root: Path, overwrite: bool = False) -> Iterator[Path]:
    """A hidden sibling folder to fill, renamed into place as `root` when the block ends without an error and
    removed otherwise: `root` is written whole or not at all (an earlier dataset there stays until the swap)."""
    _check_target(root, overwrite)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    except OSError as exc:
        raise OutputError(f"cannot create a folder next to {root}: {exc.strerror or exc}") from None
    try:
        yield staging
        _swap_in(staging, root)
    except OSError as exc:
        raise OutputError(f"cannot write dataset {root}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    tasks = _folder_tasks(tuple(tasks))
    dataset.check_against(tasks)
    if len(dataset) == 0:
        raise DataError(f"dataset for {root} is empty: expected at least one image")
    with staged_folder(root, overwrite) as staging:
        _write_contents(staging, dataset, tasks)
    return root
