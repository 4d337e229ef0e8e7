"""The runtime side of vector input: what a vector export's metadata says about its features, the checks
on the graph and on the rows fed to it, and per-row predictions. NumPy only (no torch, no data).

A vector export takes float32 (N, F) rows in raw units, columns in the metadata's feature order, and
standardizes them inside the graph; its outputs are the task kinds' own (probabilities, labels, values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edgemtl.errors import FeatureError, ModelFileError
from edgemtl.features import VECTOR, FeatureSpec
from edgemtl.runtime.results import Prediction, task_result
from edgemtl.tasks import TaskSpec

VECTOR_INPUT_NAME = "features"
VECTOR_LAYOUT = "NF"
ROW_SIZE = (1, 1)  # the "frame size" a per-row result is built for: rows have no pixels


def vector_props(features: FeatureSpec, input_name: str, batch: int | None) -> tuple[dict, dict]:
    """The metadata's `input` and `normalization` values for a vector export: names in order, statistics."""
    model_input = {
        "name": input_name,
        "kind": VECTOR,
        "dtype": "float32",
        "layout": VECTOR_LAYOUT,
        "batch": batch or "dynamic",
        "features": list(features.names),
    }
    normalization = {
        "mean": list(features.mean),
        "std": list(features.std),
        "scale": "raw",
        "missing": features.missing,
    }
    return model_input, normalization


def parse_vector_input(model_input: Mapping[str, Any], normalization: Mapping[str, Any], source: str) -> FeatureSpec:
    """The FeatureSpec a vector export's metadata describes; ModelFileError naming the file when damaged."""
    try:
        return FeatureSpec.from_dict({"names": model_input["features"], **normalization})
    except Exception as exc:  # ConfigError from the spec's own checks, KeyError for an absent key
        raise ModelFileError(f"{source} metadata edgemtl.input/normalization: {exc}; re-export the model") from None


def check_vector_input(features: FeatureSpec, batch: int | None, graph_input: Any, source: str) -> None:
    """The graph's one input is float32 (batch, F) with F the metadata's feature count."""
    if graph_input.type != "tensor(float)":
        raise ModelFileError(
            f"{source}: metadata input.dtype is float32, graph input {graph_input.name!r} is {graph_input.type}"
        )
    shape = list(graph_input.shape)
    if len(shape) != 2:
        raise ModelFileError(f"{source}: graph input {graph_input.name!r} has shape {shape}: expected (N, F)")
    if batch is None and isinstance(shape[0], int):
        raise ModelFileError(f"{source}: metadata input.batch is dynamic, the graph's batch is fixed at {shape[0]}")
    if batch is not None and isinstance(shape[0], int) and shape[0] != batch:
        raise ModelFileError(
            f"{source}: metadata input.batch is {batch}, graph input {graph_input.name!r} has {shape[0]}"
        )
    if shape[1] != features.count:
        raise ModelFileError(
            f"{source}: metadata names {features.count} features, graph input {graph_input.name!r} takes {shape[1]}"
        )


def describe_vector_input(features: FeatureSpec, input_name: str, batch: int | None) -> list[str]:
    """`edgemtl info`'s lines for the input: the shape, then every feature with its statistics, in order."""
    lines = [
        f"input  {input_name}: float32 (batch {batch or 'dynamic'}, {features.count} features) in raw units, "
        f"standardized inside the graph; empty cells: {features.missing}"
    ]
    width = max(len(name) for name in features.names)
    lines += [
        f"       {i:>3} {name:<{width}}  mean {mean:.6g}  std {std:.6g}"
        for i, (name, mean, std) in enumerate(zip(features.names, features.mean, features.std))
    ]
    return lines


def check_rows(rows: object, features: FeatureSpec, batch: int | None) -> np.ndarray:
    """(N, F) float32 rows, contiguous; (F,) is one row. FeatureError naming the problem and the fix."""
    if not isinstance(rows, np.ndarray) or rows.ndim not in (1, 2) or not np.issubdtype(rows.dtype, np.number):
        what = f"shape {rows.shape} and dtype {rows.dtype}" if isinstance(rows, np.ndarray) else type(rows).__name__
        raise FeatureError(f"features have {what}: expected (N, {features.count}) or ({features.count},) numbers")
    rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.float32)
    if rows.shape[1] != features.count:
        raise FeatureError(
            f"rows have {rows.shape[1]} features, the model takes {features.count} "
            f"({', '.join(features.names[:4])}{', ...' if features.count > 4 else ''}): pass them in that order"
        )
    if batch is not None and len(rows) != batch:
        raise FeatureError(f"a batch of {len(rows)} rows: the model was exported for batches of exactly {batch}")
    holes = np.argwhere(~np.isfinite(rows))
    if holes.size:
        row, column = (int(v) for v in holes[0])
        raise FeatureError(
            f"row {row}, feature {features.names[column]!r} is {rows[row, column]}: expected a finite number; "
            f"fill missing values before the Engine (e.g. with the training mean {features.mean[column]:.6g})"
        )
    return rows


def row_predictions(
    tasks: Sequence[TaskSpec], outputs: Mapping[str, Mapping[str, str]], raw: Mapping[str, np.ndarray], count: int
) -> list[Prediction]:
    """One Prediction per row from a batch's graph outputs (by name), built by each task kind."""
    return [
        Prediction(
            {
                task.name: task_result(task, {f: raw[name][i] for f, name in outputs[task.name].items()}, ROW_SIZE)
                for task in tasks
            }
        )
        for i in range(count)
    ]


def predict_rows(
    run: Callable[[np.ndarray], dict[str, np.ndarray]],
    rows: np.ndarray,
    tasks: Sequence[TaskSpec],
    outputs: Mapping[str, Mapping[str, str]],
    batch: int | None,
) -> list[Prediction]:
    """Checked rows through `run` (the Engine's), a fixed-batch export fed whole batches (the last padded)."""
    if batch is None:
        return row_predictions(tasks, outputs, run(rows), len(rows))
    predictions: list[Prediction] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
        predictions += row_predictions(tasks, outputs, run(padded), len(chunk))
    return predictions
