"""The export flags that set how a detection task's final boxes are chosen inside the graph (K, the score
threshold, the IoU threshold), checked before any work and written into the task's spec, so the graph
(edgemtl.kinds.box_select through the kind's postprocessing) and the file's metadata hold the same numbers.

Which tasks take them is their kind's word (`KindDef.export_settings`), not a list of kinds here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.kinds.box_select import MAX_CANDIDATES
from edgemtl.tasks import TaskSpec

#: ExportOptions field → the flag that sets it, as messages name it.
FLAGS = {
    "max_detections": "--max-detections",
    "score_threshold": "--score-threshold",
    "iou_threshold": "--iou-threshold",
}


def overrides(options: Any) -> dict[str, Any]:
    """The settings an ExportOptions gives (None: the task's own)."""
    return {key: getattr(options, key) for key in FLAGS if getattr(options, key) is not None}


def check_settings(given: dict[str, Any], tasks: tuple[TaskSpec, ...]) -> None:
    """A ConfigError naming the flag: K a whole number 1..3839, thresholds in [0, 1], and a task to take them."""
    k = given.get("max_detections")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CANDIDATES):
        raise ConfigError(
            f"--max-detections {k!r}: expected a whole number of boxes from 1 to {MAX_CANDIDATES} (TensorRT's TopK)"
        )
    for key in ("score_threshold", "iou_threshold"):
        value = given.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0
        ):
            raise ConfigError(f"{FLAGS[key]} {value!r}: expected a number from 0 to 1")
    if given and not any(set(given) <= set(kind_of(t).export_settings) for t in tasks):
        names = ", ".join(f"{t.name} ({t.kind.value})" for t in tasks)
        flags = ", ".join(FLAGS[key] for key in given)
        raise ConfigError(f"{flags} set a detection task's final boxes: this model has none ({names})")


def with_settings(tasks: tuple[TaskSpec, ...], given: dict[str, Any]) -> tuple[TaskSpec, ...]:
    """Each task with every setting its kind takes at export written into `extra`: a flag's value, else the
    task's own, else the kind's default, so the metadata records what the graph does."""
    out = []
    for task in tasks:
        defaults = kind_of(task).export_settings
        if defaults:
            settings = {key: given.get(key, task.extra.get(key, default)) for key, default in defaults.items()}
            task = replace(task, extra={**task.extra, **settings})
        out.append(task)
    return tuple(out)
