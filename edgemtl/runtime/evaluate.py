"""Per-task metrics of an exported model on labelled frames, through the Engine (no PyTorch)."""

from __future__ import annotations

import numpy as np

from edgemtl.metrics import make_meter
from edgemtl.runtime.engine import Engine
from edgemtl.tasks import TaskKind, TaskSpec

# The graph output each task kind is scored on: what the metrics compare with the target.
_SCORED_FIELD = {
    TaskKind.CLASSIFICATION: "label",
    TaskKind.SEGMENTATION: "mask",
    TaskKind.MULTILABEL: "flags",
    TaskKind.REGRESSION: "values",
}


def scored_output(engine: Engine, task: TaskSpec) -> str:
    return engine.metadata.outputs[task.name][_SCORED_FIELD[task.kind]]


def evaluate_engine(
    engine: Engine, images: np.ndarray, targets: dict[str, np.ndarray], batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """images: (N, H, W, 3) uint8 at the model size; targets as in `edgemtl.data.ArrayDataset`."""
    meters = {task.name: make_meter(task) for task in engine.tasks}
    for start in range(0, len(images), batch_size):
        outputs = engine.run(images[start : start + batch_size])
        for task in engine.tasks:
            meters[task.name].update(
                outputs[scored_output(engine, task)], targets[task.name][start : start + batch_size]
            )
    return {name: meter.compute() for name, meter in meters.items()}
