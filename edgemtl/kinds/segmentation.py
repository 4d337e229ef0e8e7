"""Segmentation: one class per pixel, from a decoder; masks are uint8 class ids at the frame's size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds.base import TaskResult, class_swap
from edgemtl.kinds.classification import ClassificationMeter
from edgemtl.kinds.imbalance import CLASS_WEIGHTS, LOSS
from edgemtl.kinds.layouts import ClassIdTargets
from edgemtl.kinds.scores import accuracy, iou_per_class, mean_iou

if TYPE_CHECKING:
    from torch import Tensor

    from edgemtl.tasks import TaskSpec

IGNORE_PIXEL = 255  # a uint8 mask value for an unlabelled pixel (a whole mask of it: no mask)
MAX_SEGMENTATION_CLASSES = IGNORE_PIXEL  # class ids travel as uint8 masks, and 255 means "unlabelled"


@dataclass(frozen=True)
class SegmentationResult(TaskResult):
    task: TaskSpec
    mask: np.ndarray  # (H, W) uint8 class ids at the frame's size

    def class_fractions(self) -> dict[str, float]:
        """Share of the frame each class covers: a cheap summary for logs and JSON."""
        counts = np.bincount(self.mask.ravel(), minlength=len(self.task.classes))
        return {c: round(float(n) / self.mask.size, 4) for c, n in zip(self.task.classes, counts)}

    def to_dict(self) -> dict[str, Any]:
        return {"class_fractions": self.class_fractions()}

    def overlay_text(self) -> None:
        return None  # painted over the frame instead


class SegmentationMeter(ClassificationMeter):
    """predicted / target: (N, H, W) class ids per pixel; unlabelled pixels (255) are skipped."""

    primary = "miou"
    missing = IGNORE_PIXEL

    def compute(self) -> dict[str, float]:
        ious = iou_per_class(self.confusion)
        result = {"miou": mean_iou(self.confusion), "pixel_accuracy": accuracy(self.confusion)}
        result.update({f"iou_{name}": float(iou) for name, iou in zip(self.task.classes, ious)})
        return result


class Segmentation(ClassIdTargets):
    value = "segmentation"
    outputs: ClassVar[dict[str, str]] = {"mask": "(N, H, W) uint8 class index per pixel"}
    scored_field = "mask"
    exact_outputs = frozenset({"mask"})
    per_image = False
    per_pixel = True
    head = "decoder"
    min_classes = 2
    class_noun = "class"
    flip_option = "flip_pairs"
    missing = IGNORE_PIXEL
    target_dtype = np.uint8
    meter = SegmentationMeter
    per_class_score = ("iou", "IoU")
    options: ClassVar[dict[str, str]] = {LOSS: "a loss", CLASS_WEIGHTS: "class weights"}  # edgemtl.kinds.imbalance
    loss_names = ("ce", "focal", "dice_ce", "ohem")

    def check_classes(self, task: TaskSpec) -> None:
        super().check_classes(task)
        if len(task.classes) > MAX_SEGMENTATION_CLASSES:
            raise ConfigError(
                f"task {task.name!r} has {len(task.classes)} classes: masks are uint8 and {IGNORE_PIXEL} marks "
                f"unlabelled pixels, so at most {MAX_SEGMENTATION_CLASSES}"
            )

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Swap the ids of the flip pairs (left_lane ↔ right_lane) in the mirrored masks."""
        if not task.extra.get("flip_pairs"):
            return target
        masks = target.copy()
        swap = class_swap(task, 256).astype(np.uint8)  # 255 (unlabelled) maps to itself
        masks[flips] = swap[masks[flips]]
        return masks

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        return (first_argmax(logits),)  # (N, H, W) uint8

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        mask = outputs["mask"]
        if mask.shape != frame_size:
            import cv2  # here, not at the top: the task vocabulary imports the kinds, and needs no OpenCV

            mask = cv2.resize(mask, (frame_size[1], frame_size[0]), interpolation=cv2.INTER_NEAREST)
        return SegmentationResult(task, mask)


def first_argmax(logits: Tensor) -> Tensor:
    """uint8 (N, H, W): the first class of highest score at each pixel, as `logits.argmax(1)` gives it for
    finite logits (ties go to the lower class; a NaN score is never chosen).

    Written as one compare-and-select pass per class because ONNX Runtime's CPU ArgMax over the channel
    axis is the slow kernel of a frame-sized graph: 2.5 ms for 4×480×640 where this takes 0.8 ms (measured
    in one run, single thread), and it yields uint8 at once, with no int64 mask to cast.
    """
    import torch

    best = logits[:, 0]
    label = torch.zeros_like(best, dtype=torch.uint8)
    for index in range(1, logits.shape[1]):
        score = logits[:, index]
        label = torch.where(score > best, torch.tensor(index, dtype=torch.uint8), label)
        best = torch.maximum(best, score)
    return label
