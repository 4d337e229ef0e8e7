"""Per-task results of one frame, in the shape an application wants them (names, not indices).

Each kind defines its result (edgemtl.kinds) and builds it from the graph's outputs; they are the
runtime's API, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from edgemtl.kinds import TaskResult, kind_of
from edgemtl.kinds.classification import ClassificationResult
from edgemtl.kinds.multilabel import MultilabelResult
from edgemtl.kinds.regression import RegressionResult
from edgemtl.kinds.segmentation import SegmentationResult
from edgemtl.tasks import TaskSpec

__all__ = [
    "ClassificationResult",
    "MultilabelResult",
    "Prediction",
    "RegressionResult",
    "SegmentationResult",
    "TaskResult",
    "task_result",
]


def task_result(task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
    """Build one task's result from its graph outputs (by field name) for a single frame."""
    return kind_of(task).result(task, outputs, frame_size)


class Prediction(Mapping[str, TaskResult]):
    """All task results of one frame, keyed by task name.

    `overlay`: the frame with its mask blended in, when the file's graph draws it (`--overlay-output`).
    `buffers`: the graph outputs the results view when they came from a `BufferPool` (`Engine.predict(...,
    pool=)`), for the caller to give back once it is done with this prediction; empty otherwise.
    """

    def __init__(self, results: dict[str, TaskResult], overlay: np.ndarray | None = None) -> None:
        self._results = results
        self.overlay = overlay
        self.buffers: tuple[np.ndarray, ...] = ()

    def __getitem__(self, task: str) -> TaskResult:
        return self._results[task]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def to_dict(self) -> dict[str, Any]:
        return {name: result.to_dict() for name, result in self._results.items()}
