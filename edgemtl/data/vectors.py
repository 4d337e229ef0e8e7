"""The in-memory dataset of a vector model: rows of named float features and their per-task targets.

The vector counterpart of `ArrayDataset`, with the same interface the trainer, validation, the splits and
export use (`inputs`, `targets`, `info`, `origin`, `subset`, `frames_record`, `check_against`), so that one
training loop, one set of losses, metrics and plots serves both input kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edgemtl.errors import DataError
from edgemtl.features import VECTOR, FeatureSpec, refuse_pixel_tasks
from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskSpec


@dataclass
class VectorDataset:
    """features: (N, F) float32 in raw units, columns in `feature_names` order; NaN only where a cell was
    empty and the table allows filling it (`missing == "mean"`) until `filled` fills it.
    targets: as in ArrayDataset (the per-image kinds), with the same missing markers.
    info: "row" (the row's line in its file), "split" and "group" where the table has those columns.
    origin: {"data": the table, "input": "vector"}, so a checkpoint records which rows validated it.
    """

    features: np.ndarray
    targets: dict[str, np.ndarray]
    feature_names: tuple[str, ...]
    info: dict[str, np.ndarray] = field(default_factory=dict)
    origin: dict[str, Any] | None = None
    missing: str = "error"

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.dtype != np.float32:
            raise DataError(
                f"dataset features have shape {self.features.shape} and dtype {self.features.dtype}: "
                "expected (N, F) float32"
            )
        if self.features.shape[1] != len(self.feature_names):
            raise DataError(
                f"dataset features have {self.features.shape[1]} columns for {len(self.feature_names)} names"
            )
        for what, values in (("target", self.targets), ("info", self.info)):
            for name, value in values.items():
                if len(value) != len(self.features):
                    raise DataError(f"dataset {what} {name!r} has {len(value)} entries for {len(self.features)} rows")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def inputs(self) -> np.ndarray:
        """What the model is fed: the raw feature rows (the graph standardizes them)."""
        return self.features

    def subset(self, index: slice | np.ndarray) -> VectorDataset:
        """Some of the rows; they keep their origin, since their row numbers say which they are."""
        return replace(
            self,
            features=self.features[index],
            targets={k: v[index] for k, v in self.targets.items()},
            info={k: v[index] for k, v in self.info.items()},
        )

    def frames_record(self) -> dict[str, Any] | None:
        """Which rows these are, as a checkpoint records its validation set; None for rows given in memory."""
        if self.origin is None:
            return None
        rows = [int(r) for r in self.info["row"]] if "row" in self.info else []
        return {**self.origin, "input": VECTOR, "rows": rows}

    def check_against(self, tasks: tuple[TaskSpec, ...]) -> None:
        """Fail before training if a task needs pixels, has no target, or targets of the wrong shape."""
        refuse_pixel_tasks(tasks)
        for task in tasks:
            if task.name not in self.targets:
                raise DataError(f"dataset has no target for task {task.name!r}: it has {sorted(self.targets)}")
            kind_of(task).check_target(task, self.targets[task.name], self.features.shape)

    def statistics(self) -> FeatureSpec:
        """The standardization a model trained on these rows applies: their means and stds."""
        return FeatureSpec.from_values(self.feature_names, self.features, self.missing)

    def filled(self, spec: FeatureSpec) -> VectorDataset:
        """Empty cells filled with the spec's means (the training split's); the rows unchanged otherwise."""
        if spec.names != self.feature_names:
            raise DataError(
                f"the rows have features {list(self.feature_names)}, the model {list(spec.names)}: expected the same"
            )
        holes = np.isnan(self.features)
        if not holes.any():
            return self
        features = np.where(holes, np.asarray(spec.mean, dtype=np.float32), self.features).astype(np.float32)
        return replace(self, features=features)


def fill_from_training(train: VectorDataset, val: VectorDataset) -> tuple[VectorDataset, VectorDataset]:
    """Both sets with empty cells filled from the training split's means, never the validation split's."""
    spec = train.statistics()
    return train.filled(spec), val.filled(spec)
