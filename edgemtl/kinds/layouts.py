"""The two shapes a target comes in, each shared by two kinds: what they check, count and lose alike.

Class ids (classification: one per image; segmentation: one per pixel) carry an integer missing marker
and train with cross-entropy. Rows of floats (multilabel flags, regression values) are (N, K) with a whole
row of NaN where a sample is unlabelled, and train with an element-wise loss over the known entries.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from edgemtl.errors import DataError
from edgemtl.kinds.base import KindDef, empty_cell
from edgemtl.kinds.imbalance import CLASS_WEIGHTS, LOSS, check_class_weights, check_loss, loss_name

if TYPE_CHECKING:
    from torch import Tensor

    from edgemtl.tasks import TaskSpec


def mean_over(values: Tensor, known: Tensor) -> Tensor:
    """Mean of values where known; a batch with nothing known gives 0 that still backpropagates (zeros)."""
    import torch

    return torch.where(known, values, 0.0).sum() / known.sum().clamp(min=1)


class ClassIdTargets(KindDef):
    """Integer class ids, `missing` where unlabelled; a per-image kind has one per image, else one per pixel."""

    categorical = True

    def check_target(self, task: TaskSpec, target: np.ndarray, images_shape: tuple[int, ...]) -> None:
        shape = (images_shape[0],) if self.per_image else tuple(images_shape[:3])
        if target.shape != shape or not np.issubdtype(target.dtype, np.integer):
            raise DataError(
                f"dataset target {task.name!r} has shape {target.shape} and dtype {target.dtype}: expected {shape} "
                f"integer class ids ({self.value}; masks as large as the images)"
            )
        ids = target[target != self.missing]
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= len(task.classes)):
            raise DataError(
                f"dataset target {task.name!r} holds class ids {int(ids.min())}..{int(ids.max())}: expected "
                f"0..{len(task.classes) - 1} ({', '.join(task.classes)}), or {self.missing} where unlabelled"
            )

    def labelled(self, task: TaskSpec, target: Tensor) -> Tensor:
        return target != self.missing

    def loss(self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
        """The named loss (cross-entropy by default); output (B, C) or (B, C, H, W), target (B,) or (B, H, W)."""
        from edgemtl.kinds.losses import CLASS_ID_LOSSES

        return CLASS_ID_LOSSES[loss_name(task, self.loss_names)](output, target, self.missing, class_weights)

    def check_option(self, task: TaskSpec, key: str) -> None:
        if key == LOSS:
            check_loss(task, self.loss_names)
        elif key == CLASS_WEIGHTS:
            check_class_weights(task, self.count_of(len(task.classes)), self.class_noun)
        else:
            super().check_option(task, key)

    def class_counts(self, task: TaskSpec, targets: np.ndarray) -> np.ndarray:
        """(C,) labelled items per class."""
        ids = targets[targets != self.missing].astype(np.int64)
        return np.bincount(ids.ravel(), minlength=len(task.classes))


class RowTargets(KindDef):
    """(N, K) float rows, a whole row of NaN where unlabelled; one value may come flat, (N,)."""

    missing = math.nan
    target_dtype = np.float32
    per_image = True
    head = "pooled"

    def check_target(self, task: TaskSpec, target: np.ndarray, images_shape: tuple[int, ...]) -> None:
        count, width = images_shape[0], task.num_outputs
        shapes = [(count, width)] + ([(count,)] if width == 1 else [])
        if target.shape not in shapes or not np.issubdtype(target.dtype, np.floating):
            raise DataError(
                f"dataset target {task.name!r} has shape {target.shape} and dtype {target.dtype}: expected "
                f"{shapes[0]} floats ({self.value})"
            )
        rows = target.reshape(count, width)
        missing = np.isnan(rows)
        partly = np.flatnonzero(missing.any(1) & ~missing.all(1))
        if partly.size:
            raise DataError(
                f"dataset target {task.name!r} has {partly.size} rows partly NaN (first: row {partly[0]}): "
                "expected a whole row of NaN for a sample without this target"
            )
        values = rows[~missing]
        self.check_values(task, values)
        if not np.isfinite(values).all():
            raise DataError(f"dataset target {task.name!r} holds infinite values: expected finite numbers or NaN")

    def check_values(self, task: TaskSpec, values: np.ndarray) -> None:
        """Refuse labelled values the kind cannot take (flags other than 0 and 1); any number by default."""

    def parse_label(self, task: TaskSpec, value: Any) -> np.ndarray | None:
        """A row of NaN for an empty cell (unlabelled), else the kind's `parse_row`."""
        if empty_cell(value):
            return np.full(task.num_outputs, np.nan, dtype=np.float32)
        return self.parse_row(task, value)

    def format_label(self, task: TaskSpec, target: np.ndarray) -> str:
        row = np.asarray(target, dtype=np.float32).reshape(-1)
        return "" if np.isnan(row).all() else self.format_row(task, row)

    @abstractmethod
    def parse_row(self, task: TaskSpec, value: Any) -> np.ndarray | None:
        """A labelled cell or JSON value → a (K,) float32 row, or None when it is unusable."""

    @abstractmethod
    def format_row(self, task: TaskSpec, row: np.ndarray) -> str:
        """A labelled (K,) row as a CSV cell, the inverse of `parse_row`."""

    def labelled(self, task: TaskSpec, target: Tensor) -> Tensor:
        import torch

        return ~torch.isnan(target.float())

    def loss(self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
        """`elementwise_loss` averaged over the known entries; output and target (B, K)."""
        import torch

        known = self.labelled(task, target).view_as(output)
        target = torch.nan_to_num(target.float().view_as(output))
        return mean_over(self.elementwise_loss(task, output, target, class_weights), known)

    @abstractmethod
    def elementwise_loss(
        self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None
    ) -> Tensor:
        """The loss of each entry (no reduction); unknown entries are dropped afterwards. `class_weights`:
        see `KindDef.loss` (None for a kind that takes none)."""
