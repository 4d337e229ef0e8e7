"""The in-memory dataset every source of data is turned into before training or evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemtl.errors import ConfigError, DataError
from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskSpec


def check_image_size(size: tuple[int, int], minimum: int = 1) -> tuple[int, int]:
    """(height, width) as ints, or a ConfigError saying what a usable size is."""
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        height = width = 0
    if height < minimum or width < minimum:
        raise ConfigError(f"image size {size!r} is not usable: expected (height, width), both ≥ {minimum} pixels")
    return height, width


@dataclass
class ArrayDataset:
    """Frames and their per-task targets as NumPy arrays.

    images: (N, H, W, 3) uint8 BGR, exactly what a camera hands the runtime.
    targets: task name → (N,) int64 class ids (classification), (N, H, W) uint8 class ids
    (segmentation), (N, L) float32 0/1 flags (multilabel), (N, K) float32 values (regression).
    A sample without a task's target holds that task's missing marker (edgemtl.tasks): class -1,
    mask pixels 255, a row of NaN; losses and metrics skip it (partial labels).

    info: per-sample facts of an on-disk dataset, (N,) string arrays: "image" (the name it is listed
    under), "split" (train / val / test, "" where the split is automatic) and "group" (sequence, track or
    session; "" where none). origin: where the frames come from ({"data": folder or manifest} or, for
    synthetic scenes, {"data": "synthetic", "split", "count", "seed"}), so a checkpoint can record which
    frames validated it and `edgemtl export` / `edgemtl eval` can score the same ones later.
    """

    images: np.ndarray
    targets: dict[str, np.ndarray]
    info: dict[str, np.ndarray] = field(default_factory=dict)
    origin: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise DataError(
                f"dataset images have shape {self.images.shape} and dtype {self.images.dtype}: "
                "expected (N, H, W, 3) uint8"
            )
        for name, target in self.targets.items():
            if len(target) != len(self.images):
                raise DataError(f"dataset target {name!r} has {len(target)} entries for {len(self.images)} images")
        for name, values in self.info.items():
            if len(values) != len(self.images):
                raise DataError(f"dataset info {name!r} has {len(values)} entries for {len(self.images)} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def inputs(self) -> np.ndarray:
        """What the model is fed: the frames (a VectorDataset's are its feature rows)."""
        return self.images

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, index: slice | np.ndarray) -> ArrayDataset:
        """Some of the samples. Listed frames keep their origin (their names say which they are); generated
        ones lose it, since a part of a synthetic split is no longer what its origin describes."""
        origin = self.origin if "image" in self.info else None
        info = {k: v[index] for k, v in self.info.items()}
        return ArrayDataset(self.images[index], {k: v[index] for k, v in self.targets.items()}, info, origin)

    def frames_record(self) -> dict[str, Any] | None:
        """Which frames these are, as a checkpoint records its validation set; None for frames given in memory."""
        if self.origin is None:
            return None
        if "image" in self.info:
            return {**self.origin, "images": [str(name) for name in self.info["image"]]}
        return dict(self.origin)

    def check_against(self, tasks: tuple[TaskSpec, ...]) -> None:
        """Fail before training starts if a task has no target, or targets of the wrong shape or range.

        Missing targets (partial labels) are allowed, in the markers of edgemtl.tasks: class -1, mask
        pixel 255, a whole row of NaN for multilabel and regression. Each kind checks its own targets.
        """
        for task in tasks:
            if task.name not in self.targets:
                raise DataError(f"dataset has no target for task {task.name!r}: it has {sorted(self.targets)}")
            kind_of(task).check_target(task, self.targets[task.name], self.images.shape)
