"""Detection: any number of boxes with classes per image, from an anchor-free head on the shared features.

Targets are padded (MAX_BOXES, 5) float32 rows per image (edgemtl.kinds.boxes): [class, x1, y1, x2, y2] in
the model input's pixels, class -1 for padding, all NaN where the image's boxes were not labelled. The head
(edgemtl.model.detection) decodes a box and class logits at every location for training, and hands the
exported graph its undecoded parts; `postprocess` keeps the final boxes with `select_candidates`
(edgemtl.kinds.box_select: class-aware suppression from static-shape operators, so the exported graph
returns fixed-size outputs every ONNX consumer runs; it decodes and scores only the candidates). Scored by
COCO mAP through pycocotools (edgemtl.kinds.detection_meter).

Options (`extra`): "loss" — the assigner, "center" or "tal" (edgemtl.kinds.detection_loss); "stride" — the
head's output stride, 4 or 8; "tower_stride" — where the head's blocks run, 4 or 8 and at least the stride
(default 8: only a projection reads the stride-4 maps, edgemtl.model.detection); "max_detections",
"score_threshold", "iou_threshold" — the selection (the export records the values it used here);
"flip_pairs" — classes a mirror swaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.errors import ConfigError, DataError, ModelFileError
from edgemtl.kinds.base import KindDef, TaskResult, class_swap
from edgemtl.kinds.box_match import SCORE_TOLERANCE, match_boxes
from edgemtl.kinds.boxes import MAX_BOXES, warp_target
from edgemtl.kinds.detection_meter import DetectionMeter
from edgemtl.kinds.imbalance import LOSS, check_loss, loss_name
from edgemtl.kinds.objects import Objects

if TYPE_CHECKING:
    from torch import Tensor, nn

    from edgemtl.tasks import TaskSpec

#: The selection's defaults (the contract with edgemtl.kinds.box_select and the export flags).
DEFAULT_SELECTION = {"max_detections": 100, "score_threshold": 0.25, "iou_threshold": 0.5}
STRIDES = (4, 8)
DEFAULT_STRIDE = 4  # chosen by benchmarks/detection_heads.py: small objects need the finer grid
DEFAULT_TOWER_STRIDE = 8  # the blocks at stride 8, only 1×1 convolutions at 4: the time target (docs/training.md)


@dataclass(frozen=True)
class DetectionResult(TaskResult):
    """A frame's boxes as `objects` (edgemtl.kinds.objects.Objects: boxes in the frame's pixels, best score
    first, scores, class ids and names, and track ids once tracked), which every output reads."""

    task: TaskSpec
    objects: Objects

    @property
    def boxes(self) -> np.ndarray:  # (k, 4) float32 x1, y1, x2, y2 in the frame's pixels
        return self.objects.boxes

    @property
    def scores(self) -> np.ndarray:  # (k,) float32
        return self.objects.scores

    @property
    def classes(self) -> np.ndarray:  # (k,) int64 class ids
        return self.objects.classes

    @property
    def names(self) -> list[str]:
        return self.objects.class_names()

    def to_dict(self) -> dict[str, Any]:
        return {"objects": self.objects.to_dicts()}

    def overlay_text(self) -> str:
        names = self.names
        if not names:
            return "nothing"
        counts = {name: names.count(name) for name in dict.fromkeys(names)}
        return ", ".join(f"{count} {name}" for name, count in counts.items())


def selection(task: TaskSpec) -> tuple[int, float, float]:
    """(max detections, score threshold, IoU threshold) of a task: its extra, else the defaults."""
    values = {key: task.extra.get(key, default) for key, default in DEFAULT_SELECTION.items()}
    return int(values["max_detections"]), float(values["score_threshold"]), float(values["iou_threshold"])


def logit_floor(score_threshold: float) -> float | None:
    """A logit whose sigmoid is below `score_threshold` by more than float rounding (0.01 under the exact
    logit), so that no logit under it can make a box; None where every logit might (a threshold of 0 or 1)."""
    if not 0.0 < score_threshold < 1.0:
        return None
    return math.log(score_threshold / (1.0 - score_threshold)) - 0.01


def head_stride(task: TaskSpec) -> int:
    return int(task.extra.get("stride", DEFAULT_STRIDE))


def tower_stride(task: TaskSpec) -> int:
    """Where the head's blocks run: the task's `tower_stride`, else 8 (or the output stride if coarser)."""
    return int(task.extra.get("tower_stride", max(head_stride(task), DEFAULT_TOWER_STRIDE)))


def pack(outputs: Mapping[str, Any]) -> Any:
    """(N, K, 7) rows [x1, y1, x2, y2, score, class, kept] from the four outputs, tensors or arrays."""
    boxes, scores, classes, count = (outputs[k] for k in ("boxes", "scores", "classes", "count"))
    if isinstance(boxes, np.ndarray):
        kept = np.arange(boxes.shape[1])[None] < np.asarray(count).reshape(-1, 1)
        columns = [boxes, scores[..., None], classes[..., None], kept[..., None]]
        return np.concatenate([np.asarray(c, np.float32) for c in columns], axis=-1)
    import torch

    kept = torch.arange(boxes.shape[1], device=boxes.device)[None] < count.reshape(-1, 1)
    return torch.cat([boxes, scores[..., None], classes[..., None].float(), kept[..., None].float()], dim=-1)


class Detection(KindDef):
    value = "detection"
    outputs: ClassVar[dict[str, str]] = {
        "boxes": "(N, K, 4) float32 x1, y1, x2, y2 in the input frame's pixels, best first",
        "scores": "(N, K) float32 score of each box, 0 past count",
        "classes": "(N, K) int64 class index of each box",
        "count": "(N) int64 boxes kept",
    }
    scored_field = "boxes"
    exact_outputs = frozenset({"classes", "count"})
    categorical = False  # the head's raw output is boxes and logits per location, no exportable logits map
    per_image = False
    per_pixel = False
    head = "detection"
    min_classes = 1
    class_noun = "class"
    options: ClassVar[dict[str, str]] = {
        LOSS: "a loss",
        "stride": "a detection stride",
        "tower_stride": "a detection tower stride",
        "max_detections": "a maximum of detections",
        "score_threshold": "a score threshold",
        "iou_threshold": "an IoU threshold",
    }
    export_settings: ClassVar[dict[str, Any]] = DEFAULT_SELECTION
    flip_option = "flip_pairs"
    missing = math.nan
    target_dtype = np.float32
    meter = DetectionMeter
    per_class_score = ("ap", "AP")
    loss_names = ("center", "tal")

    def output_axes(self, task: TaskSpec, output_field: str) -> tuple[str, tuple[int | None, ...]]:
        """K is the task's max detections (not its class count)."""
        k = selection(task)[0]
        axes = {"boxes": (k, 4), "scores": (k,), "classes": (k,), "count": ()}
        dtype = self.outputs[output_field].partition(")")[2].split()[0]
        return dtype, axes[output_field]

    def check_option(self, task: TaskSpec, key: str) -> None:
        value = task.extra[key]
        if key == LOSS:
            check_loss(task, self.loss_names)
        elif key == "stride" and value not in STRIDES:
            raise ConfigError(
                f"task {task.name!r} has stride {value!r}: expected one of {', '.join(map(str, STRIDES))}"
            )
        elif key == "tower_stride" and (value not in STRIDES or value < head_stride(task)):
            raise ConfigError(
                f"task {task.name!r} has tower_stride {value!r}: expected one of "
                f"{', '.join(str(s) for s in STRIDES if s >= head_stride(task))} (at least its stride)"
            )
        elif key == "max_detections" and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"task {task.name!r} has max_detections {value!r}: expected a whole number ≥ 1")
        elif key in ("score_threshold", "iou_threshold") and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
        ):
            raise ConfigError(f"task {task.name!r} has {key} {value!r}: expected a number between 0 and 1")

    def saved_task(self, task: TaskSpec, state_keys: frozenset[str]) -> TaskSpec:
        """Files from before the stride-8 tower (no `tower_stride`, no weights of its `fine` projection) ran the
        tower at the output stride: they keep that head, so they still load."""
        from dataclasses import replace

        if "tower_stride" in task.extra or head_stride(task) >= tower_stride(task):
            return task
        if f"heads.{task.name}.fine.0.weight" in state_keys:
            return task
        return replace(task, extra={**task.extra, "tower_stride": head_stride(task)})

    def vary_untrained(self, head: nn.Module) -> None:
        """Every location starts at the 1 % prior, all scores within float error of each other, so which of two
        tied boxes ranks first differs between kernels (OpenVINO on arm64 swapped two): class weights drawn
        wide, bias 0, spread the scores apart around 0.5, so boxes survive a selection threshold and rank alike."""
        import torch

        with torch.no_grad():
            head.classes.weight.normal_(0, 2.0)
            head.classes.bias.zero_()

    def spec_lines(self, task: TaskSpec) -> list[str]:
        k, score, iou = selection(task)
        return [f"up to {k} boxes, score ≥ {score:g}, suppression at IoU {iou:g}"]

    # --- targets ---------------------------------------------------------------------------------------

    def check_target(self, task: TaskSpec, target: np.ndarray, images_shape: tuple[int, ...]) -> None:
        shape = (images_shape[0], MAX_BOXES, 5)
        if target.shape != shape or not np.issubdtype(target.dtype, np.floating):
            raise DataError(
                f"dataset target {task.name!r} has shape {target.shape} and dtype {target.dtype}: expected {shape} "
                "floats (detection: rows of class, x1, y1, x2, y2; class -1 pads, all NaN where unlabelled)"
            )
        missing = np.isnan(target).reshape(len(target), -1)
        partly = np.flatnonzero(missing.any(1) & ~missing.all(1))
        if partly.size:
            raise DataError(
                f"dataset target {task.name!r} is partly NaN for {partly.size} images (first: {partly[0]}): "
                "expected all NaN for an image without box labels"
            )
        rows = target[~missing.all(1)].reshape(-1, 5)
        ids = rows[:, 0]
        if ids.size and (np.any(ids != np.round(ids)) or ids.min() < -1 or ids.max() >= len(task.classes)):
            raise DataError(
                f"dataset target {task.name!r} holds class ids {ids.min():g}..{ids.max():g}: expected whole "
                f"numbers 0..{len(task.classes) - 1} ({', '.join(task.classes)}), or -1 for padding"
            )
        real = rows[ids >= 0]
        if len(real) and (np.any(real[:, 3] < real[:, 1]) or np.any(real[:, 4] < real[:, 2])):
            raise DataError(
                f"dataset target {task.name!r} holds boxes with x2 < x1 or y2 < y1: expected x1, y1, x2, y2"
            )

    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """Swap the classes of the flip pairs; the boxes themselves move in `warp` with the pixels."""
        if not task.extra.get("flip_pairs"):
            return target
        out = target.copy()
        swap = class_swap(task, len(task.classes)).astype(np.float32)
        ids = out[flips, :, 0]
        real = ids >= 0  # NaN and padding stay
        ids[real] = swap[ids[real].astype(np.int64)]
        out[flips, :, 0] = ids
        return out

    def warp(self, task: TaskSpec, target: np.ndarray, index: int, matrix: np.ndarray, size: tuple[int, int]) -> None:
        target[index] = warp_target(target[index], matrix, size)

    def class_counts(self, task: TaskSpec, targets: np.ndarray) -> np.ndarray:
        ids = targets[..., 0]
        return np.bincount(ids[ids >= 0].astype(np.int64), minlength=len(task.classes))

    # --- training and export ---------------------------------------------------------------------------

    def labelled(self, task: TaskSpec, target: Tensor) -> Tensor:
        """(N,) the images with box labels (possibly none): the loss is a mean over them."""
        import torch

        return ~torch.isnan(target[:, 0, 0].float())

    def loss(self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
        from edgemtl.kinds.detection_loss import detection_loss

        return detection_loss(output, target, len(task.classes), loss_name(task, self.loss_names))

    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        """Raw (N, A, 4 + C + 3), or the head's parts in the exported graph (edgemtl.kinds.box_decode) → boxes,
        scores, classes, count, by `select_candidates`: candidates ranked by their raw logits, only theirs
        pass through the sigmoid and only their boxes are decoded (the same outputs as deciding on all)."""
        import torch

        from edgemtl.kinds.box_decode import DetectionParts
        from edgemtl.kinds.box_select import select_candidates, take_rows

        k, score, iou = selection(task)
        late = {"to_scores": torch.sigmoid, "floor": logit_floor(score)}
        if isinstance(logits, DetectionParts):
            return select_candidates(logits.logits, logits.boxes_at, k, score, iou, **late)
        boxes = logits[..., :4]
        ranks = logits[..., 4 : 4 + len(task.classes)]
        return select_candidates(ranks, lambda index: take_rows(boxes, index), k, score, iou, **late)

    def scored(self, task: TaskSpec, outputs: Mapping[str, Any]) -> Any:
        return pack(outputs)

    def parity(
        self, task: TaskSpec, ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
    ) -> list[tuple[str, str, float, float]] | None:
        """Boxes matched one to one (edgemtl.kinds.box_match): same class, IoU ≥ 0.99, score within 1e-4."""
        share, score_difference, _ = match_boxes(ours, reference, selection(task)[1])
        return [("boxes", "agreement", share, 1.0), ("scores", "max_abs_diff", score_difference, SCORE_TOLERANCE)]

    def raw_at_frame(self, task: TaskSpec, raw: Tensor, scale_x: Any, scale_y: Any) -> Tensor:
        """Boxes in the frame's pixels before selection: IoU is unchanged by scaling each axis, so the same
        boxes survive. The location columns stay in input pixels (only the loss reads them)."""
        import torch

        from edgemtl.kinds.box_decode import DetectionParts

        if isinstance(raw, DetectionParts):  # the exported graph's: scale the few boxes it decodes
            return raw.scaled(scale_x, scale_y)
        x1, y1, x2, y2 = raw[..., :4].unbind(-1)
        boxes = torch.stack([x1 * scale_x, y1 * scale_y, x2 * scale_x, y2 * scale_y], dim=-1)
        return torch.cat([boxes, raw[..., 4:]], dim=-1)

    # --- the runtime -----------------------------------------------------------------------------------

    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        count = outputs["count"] if "count" in outputs else len(outputs["boxes"])
        classes = np.asarray(outputs["classes"][: int(np.asarray(count).reshape(-1)[0])], np.int64)
        if len(classes) and (classes.min() < 0 or classes.max() >= len(task.classes)):
            # the graph's outputs do not show its class count, so a file whose metadata lists fewer classes than
            # its head has is caught here, at the first box beyond them, rather than when it is opened
            raise ModelFileError(
                f"task {task.name!r}: the graph returned class id {int(classes.max())}, the metadata names "
                f"{self.count_of(len(task.classes))} ({', '.join(task.classes)}): re-export the model"
            )
        fields = (outputs["boxes"], outputs["scores"], outputs["classes"])
        return DetectionResult(task, Objects.from_outputs(*fields, count, task.classes))
