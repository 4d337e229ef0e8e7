"""`edgemtl data check`: every problem of an on-disk dataset at once, and what it holds.

Loading a dataset stops at its first kind of problem, which is right before training but slow to fix
problems one run at a time. The check walks every sample and collects them all, with counts: unreadable
images, missing or mis-sized masks, ids out of range, unusable labels, unknown split values, duplicate
images, an image or a group in two splits. It also gives the class pixel share per mask class, the label
histogram per task, a detection task's boxes per class with a size histogram and its dropped and clipped
boxes (edgemtl.data.check_boxes), and the image sizes, and warns where a class is under 1 % of pixels or images, the
classes a model will most likely never learn. NumPy, OpenCV and Pillow only.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgemtl.data.check_boxes import BoxStats, box_file, box_lines, check_boxes, draw_boxes
from edgemtl.data.folder import read_tasks
from edgemtl.data.manifest import MANIFEST_SUFFIXES, SPLIT_VALUES
from edgemtl.data.masks import read_mask
from edgemtl.data.rows import GROUP_COLUMN, SPLIT_COLUMN, Row, read_csv_rows, read_json_rows
from edgemtl.errors import DataError
from edgemtl.kinds import kind_of
from edgemtl.kinds.base import empty_cell
from edgemtl.tasks import IGNORE_PIXEL, TaskSpec

RARE = 0.01  # a class under this share of pixels (masks) or images (labels) is warned about
_SHOWN = 3


@dataclass
class Finding:
    """One kind of problem (or warning), with the samples it concerns."""

    what: str
    expected: str
    samples: list[str] = field(default_factory=list)  # image names, for `data show --findings`
    details: list[str] = field(default_factory=list)  # what each is, in a few words

    def line(self) -> str:
        shown = ", ".join(self.details[:_SHOWN]) + (", ..." if len(self.details) > _SHOWN else "")
        return f"{len(self.details)} {self.what} (first: {shown}): {self.expected}"


@dataclass
class CheckReport:
    """A dataset's problems and warnings, and its statistics."""

    path: Path
    frames: int
    tasks: tuple[TaskSpec, ...]
    problems: list[Finding]
    warnings: list[str]
    warned_samples: list[str]
    stats: list[str]

    @property
    def clean(self) -> bool:
        return not self.problems

    def named_samples(self) -> list[str]:
        """The samples the findings name, problems first: what `data show --findings` draws."""
        named = [s for finding in self.problems for s in finding.samples] + self.warned_samples
        return list(dict.fromkeys(named))

    def lines(self) -> list[str]:
        tasks = ", ".join(f"{t.name} ({t.kind.value})" for t in self.tasks)
        lines = [f"{self.path}: {self.frames} frames; tasks {tasks}"]
        if self.problems:
            lines += [f"{len(self.problems)} kinds of problem:", *(f"  {p.line()}" for p in self.problems)]
        else:
            lines.append("no problems")
        lines += [f"warning: {w}" for w in self.warnings]
        return lines + self.stats


@dataclass
class _Sample:
    where: str  # "line 4" / "samples[2]"
    image: str
    row: dict


class _Walk:
    """The state of one check: findings by kind, and the counts the statistics are made of."""

    def __init__(self, tasks: tuple[TaskSpec, ...]) -> None:
        self.tasks = tasks
        self.findings: dict[str, Finding] = {}
        self.pixels = {t.name: np.zeros(len(t.classes), np.int64) for t in tasks if kind_of(t).per_pixel}
        self.images_with = {t.name: defaultdict(list) for t in tasks if kind_of(t).categorical}
        self.labels: dict[str, list[np.ndarray]] = {t.name: [] for t in tasks if kind_of(t).per_image}
        self.boxes = {t.name: BoxStats(np.zeros(len(t.classes), np.int64)) for t in tasks if kind_of(t).per_object}
        self.sizes: Counter[str] = Counter()
        self.hashes: dict[str, list[str]] = defaultdict(list)

    def problem(self, what: str, expected: str, sample: str, detail: str) -> None:
        finding = self.findings.setdefault(what, Finding(what, expected))
        finding.samples.append(sample)
        finding.details.append(detail)


def _rows(path: Path, tasks: tuple[TaskSpec, ...]) -> tuple[Path, list[Row], Path, Path, bool]:
    """(the listing file, its rows, image folder, mask folder, masks by default name) of a folder or manifest."""
    if path.is_dir():
        labels = path / "labels.csv"
        if not labels.is_file():
            raise DataError(f"{path} has no labels.csv: expected a dataset folder (edgemtl data import writes one)")
        rows = read_csv_rows(labels, ["image"])
        segmentation = [t.name for t in tasks if kind_of(t).per_pixel]
        defaults = bool(segmentation) and bool(rows) and segmentation[0] not in rows[0][1]
        return labels, rows, path / "images", path / "masks", defaults
    if path.suffix.lower() not in MANIFEST_SUFFIXES or not path.is_file():
        raise DataError(f"dataset {path} is neither a folder nor a manifest file: expected one to check")
    rows = read_csv_rows(path, ["image"]) if path.suffix.lower() == ".csv" else read_json_rows(path, tasks)
    return path, rows, path.parent, path.parent, False


def _check_image(walk: _Walk, image_dir: Path, sample: _Sample) -> np.ndarray | None:
    path = image_dir / sample.image
    if not path.is_file():
        walk.problem(
            f"images missing from {image_dir}", "expected every listed image to exist", sample.image, sample.image
        )
        return None
    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        walk.problem(
            "unreadable images", "expected PNG, JPEG or BMP files OpenCV can decode", sample.image, sample.image
        )
        return None
    walk.hashes[hashlib.sha1(data).hexdigest()].append(sample.image)
    walk.sizes[f"{image.shape[0]}×{image.shape[1]}"] += 1
    return image


def _check_mask(walk: _Walk, task: TaskSpec, path: Path, image: np.ndarray | None, sample: _Sample) -> None:
    try:
        mask = read_mask(path)
    except DataError as exc:
        walk.problem(
            f"unusable masks of {task.name!r}",
            "expected an indexed or greyscale PNG of class ids",
            sample.image,
            str(exc).split(":")[0],
        )
        return
    if image is not None and mask.shape != image.shape[:2]:
        walk.problem(
            f"masks of {task.name!r} of another size than their image",
            "expected a mask exactly as large as its image",
            sample.image,
            f"{path.name} is {mask.shape[0]}×{mask.shape[1]}, its image {image.shape[0]}×{image.shape[1]}",
        )
    ids = mask[mask != IGNORE_PIXEL]
    if ids.size and int(ids.max()) >= len(task.classes):
        walk.problem(
            f"masks of {task.name!r} with class ids ≥ {len(task.classes)}",
            f"expected ids 0..{len(task.classes) - 1} ({', '.join(task.classes)}), or 255 where unlabelled",
            sample.image,
            f"{path.name}, max id {int(ids.max())}",
        )
        ids = ids[ids < len(task.classes)]
    counts = np.bincount(ids, minlength=len(task.classes))
    walk.pixels[task.name] += counts
    for index in np.flatnonzero(counts):
        walk.images_with[task.name][int(index)].append(sample.image)


def _check_labels(walk: _Walk, task: TaskSpec, sample: _Sample, source: Path) -> None:
    kind, cell = kind_of(task), sample.row.get(task.name)
    value = kind.parse_label(task, cell)
    if value is None:
        walk.problem(
            f"{kind.label_problem} of task {task.name!r} in {source}",
            kind.expected_label(task),
            sample.image,
            f"{cell!r} on {sample.where}",
        )
        return
    if empty_cell(cell):
        return
    walk.labels[task.name].append(np.atleast_1d(np.asarray(value, dtype=np.float64)))
    if kind_of(task).categorical:
        for index in kind_of(task).present_classes(task, np.asarray(value)):
            walk.images_with[task.name][int(index)].append(sample.image)


def _problem_of(walk: _Walk, image: str) -> Callable[[str, str, str], None]:
    """walk.problem for one sample: (what, expected, detail)."""
    return lambda what, expected, detail: walk.problem(what, expected, image, detail)


def _walk_samples(walk: _Walk, path: Path) -> tuple[Path, list[_Sample]]:
    """Check every sample's image, masks and cells."""
    source, rows, image_dir, mask_dir, defaults = _rows(path, walk.tasks)
    samples = [_Sample(where, str(row.get("image") or "").strip(), row) for where, row in rows]
    counts = Counter(s.image for s in samples)
    for sample in samples:
        if not sample.image:
            walk.problem(
                f"samples in {source} without an image",
                "expected an image name in every row",
                sample.where,
                sample.where,
            )
            continue
        if counts[sample.image] > 1:
            walk.problem(
                f"images listed more than once in {source}", "expected one row per image", sample.image, sample.image
            )
        split = str(sample.row.get(SPLIT_COLUMN) or "").strip()
        if split not in ("", *SPLIT_VALUES):
            walk.problem(
                f"unknown split values in {source}",
                f"expected {', '.join(SPLIT_VALUES)} or empty",
                sample.image,
                f"{split!r} on {sample.where}",
            )
        image = _check_image(walk, image_dir, sample)
        for task in walk.tasks:
            if kind_of(task).per_image:
                _check_labels(walk, task, sample, source)
                continue
            if kind_of(task).per_object:
                found = box_file(path, task, sample.image, sample.row)
                check_boxes(walk.boxes[task.name], task, found, image, _problem_of(walk, sample.image))
                continue
            name = Path(sample.image).with_suffix(".png").as_posix() if defaults else sample.row.get(task.name)
            if empty_cell(name):
                continue
            if not (mask_dir / str(name)).is_file():
                walk.problem(
                    f"masks of {task.name!r} missing from {mask_dir}",
                    "expected every image's mask to exist (or an empty cell)",
                    sample.image,
                    str(name),
                )
                continue
            _check_mask(walk, task, mask_dir / str(name), image, sample)
    return source, samples


def _check_splits(walk: _Walk, samples: list[_Sample]) -> None:
    """Duplicate images, and images or groups on both sides of a split."""
    split_of = {s.image: str(s.row.get(SPLIT_COLUMN) or "").strip() for s in samples}
    for names in walk.hashes.values():
        if len(names) > 1:
            splits = {split_of.get(n, "") for n in names} - {""}
            what = "images in two splits" if len(splits) > 1 else "duplicate images"
            walk.problem(what, "expected each frame once: remove the copies", names[0], " = ".join(names))
    groups: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        group = str(sample.row.get(GROUP_COLUMN) or "").strip()
        if group and split_of[sample.image]:
            groups[group].add(split_of[sample.image])
    for group, splits in groups.items():
        if len(splits) > 1:
            first = next(s.image for s in samples if str(s.row.get(GROUP_COLUMN) or "").strip() == group)
            walk.problem(
                "groups in two splits",
                "expected a group's frames in one split (neighbouring frames leak)",
                first,
                f"{group!r} in {', '.join(sorted(splits))}",
            )


def _statistics(walk: _Walk, samples: list[_Sample], frames: int) -> tuple[list[str], list[str], list[str]]:
    """(statistics lines, warnings, warned samples)."""
    lines, warnings, warned = [], [], []
    for task in walk.tasks:
        if task.name in walk.boxes:
            box_stats, box_warnings = box_lines(task, walk.boxes[task.name], frames)
            lines += box_stats
            warnings += box_warnings
            continue
        if task.name in walk.pixels:
            total = walk.pixels[task.name].sum()
            shares = walk.pixels[task.name] / max(total, 1)
            lines.append(f"{task.name} pixels: " + ", ".join(f"{c} {s:.1%}" for c, s in zip(task.classes, shares)))
            rare = [(c, s, i) for i, (c, s) in enumerate(zip(task.classes, shares)) if s < RARE]
            unit = "labelled pixels"
        elif kind_of(task).categorical:
            counts = [len(walk.images_with[task.name].get(i, [])) for i in range(len(task.classes))]
            labelled = len(walk.labels[task.name])
            lines.append(
                f"{task.name} labels: "
                + ", ".join(f"{c} {n}" for c, n in zip(task.classes, counts))
                + f" ({frames - labelled} unlabelled)"
            )
            rare = [
                (c, n / max(labelled, 1), i)
                for i, (c, n) in enumerate(zip(task.classes, counts))
                if n < RARE * max(labelled, 1) or not n
            ]
            unit = "labelled images"
        else:
            values = np.stack(walk.labels[task.name]) if walk.labels[task.name] else np.zeros((0, task.num_outputs))
            names = task.classes or ("value",)
            summary = (
                ", ".join(f"{n} {v.min():.3g}..{v.max():.3g} (mean {v.mean():.3g})" for n, v in zip(names, values.T))
                if len(values)
                else "none labelled"
            )
            lines.append(f"{task.name} values: {summary}")
            continue
        for name, share, index in rare:
            warnings.append(
                f"class {name!r} of {task.name!r} is {share:.2%} of {unit} (under {RARE:.0%}): it may not be learnt"
            )
            warned += walk.images_with[task.name].get(index, [])[:_SHOWN]
    sizes = ", ".join(f"{size} ×{count}" for size, count in walk.sizes.most_common())
    lines.append(f"image sizes: {sizes or 'none readable'}")
    split_counts = Counter(str(s.row.get(SPLIT_COLUMN) or "").strip() or "automatic" for s in samples)
    groups = {str(s.row.get(GROUP_COLUMN) or "").strip() for s in samples} - {""}
    lines.append(
        "splits: " + ", ".join(f"{k} {v}" for k, v in sorted(split_counts.items())) + f"; {len(groups)} groups"
    )
    return lines, warnings, warned


def check_dataset(path: Path | str) -> CheckReport:
    """Every problem of a dataset folder or manifest, with counts, and its statistics (nothing is changed)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset {path} does not exist: expected a dataset folder or a manifest file")
    tasks = read_tasks(path)
    walk = _Walk(tasks)
    _, samples = _walk_samples(walk, path)
    _check_splits(walk, samples)
    stats, warnings, warned = _statistics(walk, samples, len(samples))
    return CheckReport(path, len(samples), tasks, list(walk.findings.values()), warnings, warned, stats)


@dataclass(frozen=True)
class SampleView:
    """One sample as `data show` draws it: the frame, its masks (None where unusable) and its labels."""

    name: str
    image: np.ndarray  # BGR; a grey frame where the image cannot be read
    masks: dict[str, np.ndarray | None]
    title: str


def _view(
    sample: _Sample, tasks: tuple[TaskSpec, ...], dirs: tuple[Path, Path], defaults: bool, dataset: Path
) -> SampleView:
    image = cv2.imread(str(dirs[0] / sample.image), cv2.IMREAD_COLOR) if sample.image else None
    lines = [sample.image if image is not None else f"{sample.image} (unreadable)"]
    image = np.full((64, 64, 3), 128, np.uint8) if image is None else image
    masks: dict[str, np.ndarray | None] = {}
    for task in tasks:
        if kind_of(task).per_image:
            cell = sample.row.get(task.name)
            lines.append(f"{task.name}: {'?' if empty_cell(cell) else str(cell).strip()}")
            continue
        if kind_of(task).per_object:
            image, line = draw_boxes(image, task, box_file(dataset, task, sample.image, sample.row))
            lines.append(line)
            continue
        name = Path(sample.image).with_suffix(".png").as_posix() if defaults else sample.row.get(task.name)
        try:
            mask = None if empty_cell(name) else read_mask(dirs[1] / str(name))
        except DataError:
            mask, lines[0] = None, f"{lines[0]} (mask unusable)"
        if mask is not None and mask.shape != image.shape[:2]:
            lines[0] += " (mask mis-sized)"
            mask = cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
        masks[task.name] = None if mask is None else np.where(mask < len(task.classes), mask, 0).astype(np.uint8)
    return SampleView(sample.image, image, masks, "\n".join(lines))


def sample_views(
    path: Path | str, names: list[str] | None = None, count: int = 16
) -> tuple[tuple[TaskSpec, ...], list[SampleView]]:
    """The dataset's tasks, and `count` samples to draw: those named, else evenly spaced over the listing."""
    path = Path(path)
    tasks = read_tasks(path)
    _, rows, image_dir, mask_dir, defaults = _rows(path, tasks)
    samples = [_Sample(where, str(row.get("image") or "").strip(), row) for where, row in rows]
    if names is not None:
        by_name = {s.image: s for s in samples}
        chosen = [by_name[n] for n in names if n in by_name][:count]
    else:
        picks = np.unique(np.linspace(0, len(samples) - 1, min(count, len(samples))).round().astype(int))
        chosen = [samples[i] for i in picks] if samples else []
    if not chosen:
        raise DataError(f"{path} has no samples to show: expected at least one listed image")
    return tasks, [_view(s, tasks, (image_dir, mask_dir), defaults, path) for s in chosen]
