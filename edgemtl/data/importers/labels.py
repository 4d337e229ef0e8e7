"""Image-level labels from a CSV or JSON file, joined onto the samples of any import by image name.

    image,scene,objects,speed,pose.x,pose.y,split,group
    0001.jpg,left,cone;box,0.4,1.5,-2,train,drive_3

Each column (JSON key) but `image`, `split` and `group` becomes a task, its kind read off its values:
numbers → regression (columns `pose.x`, `pose.y` are one regression task `pose` with named values x and
y); cells joined by `;` (or a lone `-`: none) or JSON lists → multilabel; anything else → classification.
Class names are the values seen, sorted. A JSON file is a list of objects with an "image" key, or an
object mapping image names to objects. The `image` cell matches an imported image by file name or stem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemtl.data.manifest import read_splits
from edgemtl.data.rows import GROUP_COLUMN, MAX_MANIFEST_BYTES, SPLIT_COLUMN, Row, fail_if_any, read_csv_rows
from edgemtl.errors import ConfigError, DataError
from edgemtl.jsonfile import read_json
from edgemtl.kinds.base import empty_cell
from edgemtl.kinds.multilabel import NO_LABELS
from edgemtl.tasks import TaskKind, TaskSpec

_RESERVED = ("image", SPLIT_COLUMN, GROUP_COLUMN)


def _number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _natural(names: set[str]) -> tuple[str, ...]:
    """Sorted, numbers by value ("2" before "10")."""
    return tuple(sorted(names, key=lambda n: (0, float(n), n) if _number(n) else (1, 0.0, n)))


def _as_cell(value: Any) -> str:
    """A JSON value in the syntax of labels.csv: lists joined by ';' ('-' when empty)."""
    if isinstance(value, list):
        return ";".join(str(v) for v in value) or NO_LABELS
    return "" if empty_cell(value) else str(value).strip()


def _infer(source: Path, name: str, cells: list[str], listed: bool) -> TaskSpec:
    """A column's task, from its labelled cells (see the module's docstring)."""
    values = [c for c in cells if c]
    if not values:
        raise DataError(f"column {name!r} of {source} holds no labels: expected at least one labelled row")
    parts = [v.split(";") for v in values]
    try:
        if listed or any(v == NO_LABELS or len(p) > 1 for v, p in zip(values, parts, strict=True)):
            if all(_number(x) for p in parts for x in p) and len({len(p) for p in parts}) == 1:
                width = len(parts[0])
                return TaskSpec(name, TaskKind.REGRESSION, tuple(f"value{i}" for i in range(width)))
            names = {x.strip() for p in parts for x in p if x.strip() and x.strip() != NO_LABELS}
            return TaskSpec(name, TaskKind.MULTILABEL, _natural(names))
        if all(_number(v) for v in values):
            return TaskSpec(name, TaskKind.REGRESSION)
        return TaskSpec(name, TaskKind.CLASSIFICATION, _natural(set(values)))
    except ConfigError as exc:
        raise DataError(f"column {name!r} of {source}: {exc}") from None


@dataclass(frozen=True)
class LabelTable:
    """The labels of a CSV or JSON file by image stem, with the tasks they were read as."""

    source: Path
    tasks: tuple[TaskSpec, ...]
    cells_by_stem: dict[str, dict[str, str]]  # stem → {column: labels.csv cell}, split and group included

    @classmethod
    def read(cls, path: Path) -> LabelTable:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"labels file {path} does not exist: expected a CSV or JSON file with an image column")
        rows = read_csv_rows(path, ["image"]) if path.suffix.lower() != ".json" else _json_rows(path)
        read_splits(path, rows)  # an unknown split value fails here, naming its row
        names = [str(row.get("image") or "").strip() for _, row in rows]
        fail_if_any(
            [where for (where, _), name in zip(rows, names, strict=True) if not name],
            f"rows of {path} without an image",
            "expected the image's file name in every row",
        )
        stems = [Path(name).stem for name in names]
        fail_if_any(
            sorted({s for s in stems if stems.count(s) > 1}), f"images named twice in {path}", "expected one row each"
        )
        columns = list(dict.fromkeys(key for _, row in rows for key in row if key not in _RESERVED))
        groups: dict[str, list[str]] = {}
        for column in columns:  # pose.x, pose.y → pose with values x, y
            groups.setdefault(column.split(".", 1)[0], []).append(column)
        tasks, cells = [], [{c: _as_cell(row.get(c)) for c in (*_RESERVED[1:], *columns)} for _, row in rows]
        for name, members in groups.items():
            if members == [name]:
                listed = any(isinstance(row.get(name), list) for _, row in rows)
                tasks.append(_infer(path, name, [c[name] for c in cells], listed))
                continue
            tasks.append(TaskSpec(name, TaskKind.REGRESSION, tuple(m.split(".", 1)[1] for m in members)))
            for (where, _), cell in zip(rows, cells, strict=True):
                values = [cell.pop(m) for m in members]
                if any(values) and not all(values):
                    raise DataError(f"{path} {where}: {name} has some of {', '.join(members)} empty: give all or none")
                cell[name] = ";".join(values) if all(values) else ""
        return cls(path, tuple(tasks), dict(zip(stems, cells, strict=True)))

    def cells(self, stem: str, image_name: str) -> dict[str, str]:
        """The labels.csv cells of one imported image (empty where the file has no row for it)."""
        return self.cells_by_stem.get(stem) or self.cells_by_stem.get(Path(image_name).stem) or {}

    def check_joined(self, images: list[str]) -> None:
        """Every row of the labels file found its image: a row naming none is a typo, not a label to lose."""
        imported = {Path(name).stem for name in images}
        fail_if_any(
            [stem for stem in self.cells_by_stem if stem not in imported],
            f"rows of {self.source} naming no imported image",
            "expected each row's image to be one of the source's images (by file name or stem); remove the others",
        )


def _json_rows(path: Path) -> list[Row]:
    data = read_json(path, "labels file", "expected a list of objects", max_bytes=MAX_MANIFEST_BYTES)
    if isinstance(data, dict):
        data = [{"image": image, **(v if isinstance(v, dict) else {"label": v})} for image, v in data.items()]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DataError(f'labels file {path} is not a list of objects: expected [{{"image": "0001.jpg", ...}}, ...]')
    rows: list[Row] = []
    for i, item in enumerate(data):
        flat: dict[str, Any] = {}
        for key, value in item.items():
            if isinstance(value, dict):  # {"pose": {"x": 1, "y": 2}}: named regression values
                flat.update({f"{key}.{name}": v for name, v in value.items()})
            else:
                flat[key] = value
        rows.append((f"[{i}]", flat))
    return rows
