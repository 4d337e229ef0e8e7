"""Feature vectors, the second input kind: what a model fed N named float features knows about them.

An image model reads a camera frame; a vector model reads one row of a table (a health record, a robot's
IMU and odometry features). The row's features are named and ordered, and the graph standardizes them
itself with statistics taken from the training split, so a caller passes raw units. `FeatureSpec` is that
description: it travels from the training data into the checkpoint and into the ONNX metadata, the way a
TaskSpec does. NumPy only: the runtime reads it on devices without PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of

if TYPE_CHECKING:
    from edgemtl.tasks import TaskSpec

IMAGE, VECTOR = "image", "vector"
INPUT_KINDS = (IMAGE, VECTOR)
#: What a missing feature cell does: "error" refuses the table, "mean" fills in the training split's mean.
MISSING_FEATURES = ("error", "mean")
#: A feature whose training values barely vary is divided by this instead of ~0 (no blow-up on new data).
MIN_STD = 1e-6


def check_input_kind(value: str) -> str:
    if value not in INPUT_KINDS:
        raise ConfigError(f"unknown input {value!r}: expected one of {', '.join(INPUT_KINDS)}")
    return value


def check_missing_policy(value: str) -> str:
    if value not in MISSING_FEATURES:
        raise ConfigError(
            f"unknown missing_features {value!r}: expected 'error' (refuse a table with an empty feature "
            "cell) or 'mean' (fill it with the training split's mean)"
        )
    return value


def check_feature_names(names: Sequence[str], where: str = "features") -> tuple[str, ...]:
    """Non-empty, unique column names: a model's input is addressed by them."""
    names = tuple(names)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{where} is {list(names)!r}: expected a non-empty list of column names")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{where} names {', '.join(repeated)} more than once: expected each column once")
    return names


def refuse_pixel_tasks(tasks: Sequence[TaskSpec]) -> None:
    """Vector input predicts one target per row: a task whose targets are masks has no pixels to label."""
    for task in tasks:
        if not kind_of(task).per_image:
            raise ConfigError(
                f"task {task.name!r} is {task.kind.value}, which needs image input: feature vectors predict "
                "one target per row (classification, multilabel, regression); remove the task or use images"
            )


@dataclass(frozen=True)
class FeatureSpec:
    """The features a vector model takes, in input order, with the standardization the graph applies.

    `mean` and `std` are in each feature's raw units, from the training split; `missing` says whether an
    empty cell was an error or filled with `mean` when the model trained (`edgemtl predict` does the same).
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    missing: str = "error"

    def __post_init__(self) -> None:
        check_feature_names(self.names)
        check_missing_policy(self.missing)
        if not len(self.mean) == len(self.std) == len(self.names):
            raise ConfigError(
                f"feature statistics give {len(self.mean)} means and {len(self.std)} stds for "
                f"{len(self.names)} features: expected one of each per feature"
            )
        bad = [n for n, m, s in zip(self.names, self.mean, self.std) if not (math.isfinite(m) and s > 0)]
        if bad:
            raise ConfigError(
                f"feature statistics of {', '.join(bad[:3])} are not usable: expected a finite mean, std > 0"
            )

    @property
    def count(self) -> int:
        return len(self.names)

    @classmethod
    def from_values(cls, names: Sequence[str], values: np.ndarray, missing: str = "error") -> FeatureSpec:
        """Statistics of (N, F) training values; NaN cells (missing, to be filled) are left out."""
        values = np.asarray(values, dtype=np.float64)
        seen = np.isfinite(values).any(axis=0)
        if not seen.all():
            empty = [n for n, s in zip(names, seen) if not s]
            raise ConfigError(f"feature {empty[0]!r} has no value in the training split: expected at least one")
        mean = np.nanmean(values, axis=0)
        std = np.maximum(np.nanstd(values, axis=0), MIN_STD)
        return cls(tuple(names), tuple(float(m) for m in mean), tuple(float(s) for s in std), missing)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std), "missing": self.missing}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        try:
            return cls(
                tuple(str(n) for n in data["names"]),
                tuple(float(m) for m in data["mean"]),
                tuple(float(s) for s in data["std"]),
                str(data.get("missing", "error")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"feature description {dict(data)!r} is damaged ({exc}): expected names, mean, std"
            ) from None

    def describe(self) -> str:
        """One line per feature is too long for many features; three and a count."""
        shown = ", ".join(
            f"{n} (mean {m:.4g}, std {s:.4g})" for n, m, s in list(zip(self.names, self.mean, self.std))[:3]
        )
        more = f", ... {self.count - 3} more" if self.count > 3 else ""
        return f"{self.count} features: {shown}{more}; missing values: {self.missing}"
