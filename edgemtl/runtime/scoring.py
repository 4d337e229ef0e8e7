"""Scoring an exported model: per-task metrics on labelled frames, through the Engine (no PyTorch).

The PyTorch side of the same question is `edgemtl.train.validate`; `edgemtl eval` asks either."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from edgemtl.kinds import kind_of
from edgemtl.metrics import make_meter
from edgemtl.runtime.engine import Engine
from edgemtl.tasks import TaskSpec


def scored_output(engine: Engine, task: TaskSpec) -> str:
    """The graph output a task is scored on: what the metrics compare with the target."""
    return engine.metadata.outputs[task.name][kind_of(task).scored_field]


def fill_batch(frames: np.ndarray, batch: int) -> np.ndarray:
    """`frames` with its last frame repeated up to `batch` frames: what a fixed-batch export must be fed."""
    if len(frames) >= batch:
        return frames
    return np.concatenate([frames, np.repeat(frames[-1:], batch - len(frames), axis=0)])


def engine_batches(engine: Engine, images: np.ndarray, batch_size: int = 32) -> Iterator[tuple[slice, np.ndarray]]:
    """The batches to run `images` in, each with the rows of `images` it holds.

    A fixed-batch export runs batches of exactly its size: the last one is filled with its last frame
    repeated, so any number of frames can go through it; outputs past `rows` are padding.
    """
    batch = engine.metadata.batch or batch_size
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        yield slice(start, start + len(chunk)), fill_batch(chunk, batch) if engine.metadata.batch else chunk


def scored_batches(
    engine: Engine, images: np.ndarray, batch_size: int = 32
) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Each task's scored value (its kind's `scored`: the scored output, or what the kind packs from several),
    batch by batch, with the rows of `images` it belongs to (padding dropped)."""
    for rows, frames in engine_batches(engine, images, batch_size):
        outputs = engine.run(frames)
        count = rows.stop - rows.start
        yield rows, {t.name: _scored(engine, t, outputs, count) for t in engine.tasks}


def _scored(engine: Engine, task: TaskSpec, outputs: dict[str, np.ndarray], count: int) -> np.ndarray:
    fields = {field: outputs[name][:count] for field, name in engine.metadata.outputs[task.name].items()}
    return kind_of(task).scored(task, fields)


def score_engine(
    engine: Engine, images: np.ndarray, targets: dict[str, np.ndarray], batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """images: (N, H, W, 3) uint8 at the model size; targets as in `edgemtl.data.ArrayDataset`."""
    meters = {task.name: make_meter(task) for task in engine.tasks}
    for rows, outputs in scored_batches(engine, images, batch_size):
        for name, meter in meters.items():
            meter.update(outputs[name], targets[name][rows])
    return {name: meter.compute() for name, meter in meters.items()}
