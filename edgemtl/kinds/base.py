"""What a task kind is: the interface each kind's module (classification, multilabel, ...) fills in.

Every place that would ask "which kind is this task?" asks the task's definition instead
(`edgemtl.kinds.kind_of`): its graph outputs and the one the metrics score, its headline metric, the
missing-label marker, its loss and postprocessing, how results are built, drawn and scored, how a label is
read from a CSV cell, what a horizontal flip does to a target. So adding a kind is a TaskKind member, one
module in this package and its entry in the registry, and nothing else to edit.

NumPy only: the task vocabulary (edgemtl.tasks) and the runtime import the kinds on devices without
PyTorch. The methods that need PyTorch (loss, postprocessing) import it when called; the runtime never
calls them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds.scores import TaskMeter

if TYPE_CHECKING:
    from torch import Tensor, nn

    from edgemtl.kinds.objects import Objects
    from edgemtl.tasks import TaskSpec


class TaskResult:
    """One task's result on one frame, in the shape an application wants it (names, not indices).

    Each kind's result is a frozen dataclass whose first field is the task. `mask` is the class-id map
    the overlay paints and `edgemtl predict` saves: a field of the kinds that predict one per pixel, None
    for the others, so drawing and saving ask for a mask instead of a kind. `objects` likewise: the boxes
    (edgemtl.kinds.objects) the overlay draws, tracking follows and every output carries, a field of the
    kinds that detect objects, None for the others.
    """

    task: TaskSpec
    mask: np.ndarray | None = None
    objects: Objects | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for predictions.jsonl and the sinks."""
        raise NotImplementedError

    def overlay_text(self) -> str | None:
        """The overlay's text after "<task>: "; None for a result drawn as its mask."""
        raise NotImplementedError


class KindDef(ABC):
    """One task kind. A kind's module subclasses it, sets every class attribute and implements every
    abstract method; a per-image kind implements the cell and title methods too. tests/kinds/test_table.py
    holds each kind of the registry to that."""

    value: ClassVar[str]  # the TaskKind value: the wire format of configs and ONNX metadata
    # The graph's outputs for a task, in graph order: field → "(axes) dtype what": the Engine holds a file's
    # graph to it (`output_axes`), so the description is the contract, not a comment.
    outputs: ClassVar[dict[str, str]]
    scored_field: ClassVar[str]  # the output the metrics compare with the target
    exact_outputs: ClassVar[frozenset[str]]  # outputs export parity compares by agreement (ids, flags)
    # True: the head gives logits that postprocessing decides on (classes, flags), so a prediction is right
    # or wrong and the raw logits may be exported too. False: the head's outputs are the values themselves.
    categorical: ClassVar[bool]
    # True: one target per image (pooled head, a CSV cell, a title line in plots). False: a mask or a set of
    # objects per image (see `per_pixel`).
    per_image: ClassVar[bool]
    # True: a mask per image (a decoder head, a mask file, painted over the frame, warped with the pixels by
    # augmentation). False for per-image kinds, and for kinds whose targets are a variable number of objects
    # per image (detection: a padded array of rows, read from its own files, moved by `warp`).
    per_pixel: ClassVar[bool] = False
    # Which head the model builds for the kind (edgemtl.model.heads.HEADS): "pooled", "decoder", "detection".
    head: ClassVar[str]
    min_classes: ClassVar[int]  # fewest names `TaskSpec.classes` may hold
    class_noun: ClassVar[str]  # what `TaskSpec.classes` names: "class", "label", "value"
    options: ClassVar[dict[str, str]] = {}  # extra keys only this kind takes → how a message names each
    # extra keys an export may set by flag (detection's K and thresholds) → their defaults; the export writes
    # every one into the task's spec, so the file's metadata records what its graph does
    export_settings: ClassVar[dict[str, Any]] = {}
    flip_option: ClassVar[str]  # the extra key declaring what a flip does: "flip_pairs" or "flip_negate"
    missing: ClassVar[Any]  # the missing-label marker (partial labels): losses and metrics skip it
    target_dtype: ClassVar[type[np.generic]]  # dtype of the dataset's targets (edgemtl.data.ArrayDataset)
    meter: ClassVar[type[TaskMeter]]  # scores predictions against targets; `meter.primary` is the headline
    higher_is_better: ClassVar[bool] = True  # of the headline metric: how the best checkpoint is chosen
    per_class_score: ClassVar[tuple[str, str] | None] = None  # (metric key prefix, axis name) to plot per class
    label_problem: ClassVar[str] = ""  # per-image kinds: what an unusable CSV cell is called in an error
    # The losses a task of the kind may name (`extra.loss`, edgemtl.kinds.imbalance); the first is the plain one.
    loss_names: ClassVar[tuple[str, ...]]
    # What a task that names no loss trains with, when it is not the first of `loss_names` unweighted: the
    # loss and class weights measured best on the kind's rare classes (edgemtl.kinds.imbalance.written_out).
    default_loss_options: ClassVar[dict[str, str]] = {}
    # How edgemtl.runtime.steady keeps this kind's decision steady: "one" (one class wins: `decide` gives its
    # index), "each" (every label on or off: `decide` gives 0/1 flags), None: nothing to steady (a mask, a value).
    # A kind that sets it has results with `probabilities` and implements `decide` and `steadied`.
    steady: ClassVar[str | None] = None

    @property
    def per_object(self) -> bool:
        """Neither one target per image nor a mask: a variable number of objects per image (detection's boxes,
        read from their own files, edgemtl.data.boxes)."""
        return not self.per_image and not self.per_pixel

    @property
    def primary_metric(self) -> str:
        return self.meter.primary

    def count_of(self, count: int) -> str:
        """'4 classes', '1 label': a number of what `TaskSpec.classes` names, for messages."""
        noun = self.class_noun
        return f"{count} {noun if count == 1 else noun + ('es' if noun.endswith('s') else 's')}"

    # --- the task spec ---------------------------------------------------------------------------------

    def num_outputs(self, task: TaskSpec) -> int:
        """Width of the head's output: one per class name, unless the kind says otherwise."""
        return len(task.classes)

    def check_classes(self, task: TaskSpec) -> None:
        """Refuse class lists the kind cannot use; a kind with limits beyond the minimum adds them."""
        if len(task.classes) < self.min_classes:
            raise ConfigError(
                f"task {task.name!r} ({self.value}) has {len(task.classes)} class names: "
                f"expected at least {self.min_classes}"
            )

    def check_option(self, task: TaskSpec, key: str) -> None:
        """Check the value of `task.extra[key]`, one of this kind's `options`."""
        raise NotImplementedError(f"{self.value} tasks take no option {key!r}")

    def saved_task(self, task: TaskSpec, state_keys: frozenset[str]) -> TaskSpec:
        """The task as a checkpoint's weights (their state-dict keys) were trained: an older file's head layout
        where the defaults have changed since. Most kinds have no such history."""
        return task

    def vary_untrained(self, head: nn.Module) -> None:
        """Redraw an untrained head's weights (torch's global generator) so its outputs vary as a trained one's:
        for checks that compare two runtimes' outputs of a random-weight file (`random_checkpoint(varied=True)`),
        where outputs tied within float error could come out in either order. Most kinds need nothing."""
        return None

    def spec_lines(self, task: TaskSpec) -> list[str]:
        """What an integrator must know beyond the outputs (`edgemtl info`), e.g. the flags' thresholds."""
        return []

    def output_axes(self, task: TaskSpec, output_field: str) -> tuple[str, tuple[int | None, ...]]:
        """The dtype and the axes after the batch of output `output_field`, read from its description.

        A letter other than N, H and W (C, L, K) is `num_outputs(task)`, a number is itself, H and W are any
        size (None). "logits" (exported on request) is float32 (N, C) per image, (N, C, H, W) per pixel.
        KeyError: a field this kind does not output. Used to check an export's graph against its metadata.
        """
        if output_field == "logits" and self.categorical:
            description = "(N, C) float32" if self.per_image else "(N, C, H, W) float32"
        else:
            description = self.outputs[output_field]
        axes_text, _, rest = description.partition(")")
        names = [a.strip() for a in axes_text.strip("( ").split(",") if a.strip()]
        sizes = tuple(int(a) if a.isdigit() else None if a in ("H", "W") else self.num_outputs(task) for a in names[1:])
        return rest.split()[0], sizes

    # --- targets ---------------------------------------------------------------------------------------

    @abstractmethod
    def check_target(self, task: TaskSpec, target: np.ndarray, images_shape: tuple[int, ...]) -> None:
        """Raise a DataError unless `target` is this task's targets for images of `images_shape`."""

    @abstractmethod
    def flip(self, task: TaskSpec, target: np.ndarray, flips: np.ndarray) -> np.ndarray:
        """A batch's targets once the images at `flips` ((N,) bool) are mirrored left to right.

        A new array, or `target` itself when the flip changes nothing. Masks arrive already mirrored with
        the pixels: only what the task declares (`flip_option`) is left to do. Missing targets stay missing.
        """

    def warp(self, task: TaskSpec, target: np.ndarray, index: int, matrix: np.ndarray, size: tuple[int, int]) -> None:
        """Move image `index`'s target in place by the (2, 3) affine map its pixels went through (flip, scale,
        crop) onto a frame of `size` (height, width). Only targets held in pixel coordinates (boxes) move
        here: masks are warped with the pixels by augmentation, per-image targets do not move."""
        return None  # nothing in pixel coordinates: the default for every kind but detection

    def parse_label(self, task: TaskSpec, value: Any) -> Any | None:
        """Per-image kinds: one CSV cell or JSON value → one target (the missing marker when empty), or
        None when the value is unusable."""
        raise NotImplementedError(f"{self.value} targets are masks, not cells")

    def expected_label(self, task: TaskSpec) -> str:
        """Per-image kinds: what a usable cell is, for the error naming unusable ones."""
        raise NotImplementedError(f"{self.value} targets are masks, not cells")

    def format_label(self, task: TaskSpec, target: np.ndarray) -> str:
        """Per-image kinds: one target as a CSV cell, the inverse of `parse_label`."""
        raise NotImplementedError(f"{self.value} targets are masks, not cells")

    def present_classes(self, task: TaskSpec, target: np.ndarray) -> list[int]:
        """Categorical per-image kinds: the class ids a labelled target says are present (class shares)."""
        raise NotImplementedError(f"{self.value} targets name no classes present")

    def describe(self, task: TaskSpec, value: np.ndarray) -> str:
        """Per-image kinds: a labelled target or prediction in a few words, for plot titles."""
        raise NotImplementedError(f"{self.value} targets are masks, drawn rather than described")

    # --- training and export (PyTorch, imported when called) -------------------------------------------

    @abstractmethod
    def labelled(self, task: TaskSpec, target: Tensor) -> Tensor:
        """Which items of a batch's targets carry a label (bool, the target's shape)."""

    @abstractmethod
    def loss(self, task: TaskSpec, output: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
        """Mean loss over the labelled items of a batch; 0, with zero gradients, when none is labelled.

        The task's named loss (`extra.loss`, else the kind's default); `class_weights` as `loss_weights` gives
        them, for kinds that take class weights.
        """

    def class_counts(self, task: TaskSpec, targets: np.ndarray) -> np.ndarray:
        """Kinds that take class weights: how often each outcome the loss tells apart occurs among labelled
        `targets`, (..., outcomes): class weights are computed along the last axis (edgemtl.train.losses)."""
        raise NotImplementedError(f"{self.value} tasks take no class weights")

    def loss_weights(self, task: TaskSpec, outcome_weights: np.ndarray) -> np.ndarray:
        """Weights per outcome (the shape of `class_counts`) → what `loss` takes; the same by default."""
        return outcome_weights

    def constants(self, task: TaskSpec) -> dict[str, tuple[float, ...]]:
        """Numbers `postprocess` needs from the spec; the export stores them in the graph as constants."""
        return {}

    @abstractmethod
    def postprocess(self, task: TaskSpec, logits: Tensor, constants: Mapping[str, Tensor]) -> tuple[Tensor, ...]:
        """The head's raw output → the graph's outputs, in the order of `outputs`. (Inside the export wrapper a
        head may hand over a cheaper form of it: a detection head's undecoded parts, edgemtl.kinds.box_decode.)

        The one postprocessing: the export wrapper puts it in the graph, and training scores
        `prediction`, its scored output, so validation metrics are those of the exported file.
        """

    def parity(
        self, task: TaskSpec, ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]
    ) -> list[tuple[str, str, float, float]] | None:
        """How export parity compares the file's outputs (by field) with PyTorch's: (field, measure, value, limit)
        rows, measure "agreement" (value ≥ limit) or "max_abs_diff" (value ≤ limit). None: output by output,
        values to a tolerance and ids by agreement (edgemtl.deploy.verify), what every kind but detection wants."""
        return None

    def raw_at_frame(self, task: TaskSpec, raw: Tensor, scale_x: Any, scale_y: Any) -> Tensor:
        """A frame-sized graph (edgemtl.model.frame): the head's raw output once the frame was stretched to the
        input by 1 / `scale_x`, 1 / `scale_y`; a kind whose raw output holds input pixel coordinates (boxes)
        multiplies them back into the frame's. Masks are upsampled there instead; the default changes nothing."""
        return raw

    def prediction(self, task: TaskSpec, logits: Tensor) -> Tensor:
        """What the metrics compare with the target, computed as the exported graph computes it."""
        import torch

        constants = {name: torch.tensor(v, device=logits.device) for name, v in self.constants(task).items()}
        return self.scored(task, dict(zip(self.outputs, self.postprocess(task, logits, constants))))

    def scored(self, task: TaskSpec, outputs: Mapping[str, Any]) -> Any:
        """What the meter takes, from the graph's outputs by field (tensors or NumPy arrays alike): the scored
        output by default; a kind scored on several outputs (detection: boxes with their scores, classes and
        count) packs them into one array here, so training and the runtime score the same thing."""
        return outputs[self.scored_field]

    # --- the runtime ---------------------------------------------------------------------------------

    def decide(self, task: TaskSpec, probabilities: np.ndarray) -> np.ndarray:
        """Kinds with `steady`: the decision the graph would make from these (smoothed) probabilities."""
        raise NotImplementedError(f"{self.value} has no decision to steady")

    def steadied(self, result: TaskResult, probabilities: np.ndarray, decision: np.ndarray) -> TaskResult:
        """Kinds with `steady`: `result` with its decision and probabilities replaced by steadied ones."""
        raise NotImplementedError(f"{self.value} has no decision to steady")

    @abstractmethod
    def result(self, task: TaskSpec, outputs: Mapping[str, np.ndarray], frame_size: tuple[int, int]) -> TaskResult:
        """One frame's result from its graph outputs (by field), at the frame's (height, width)."""


def empty_cell(value: Any) -> bool:
    """An absent, null or blank cell: the sample has no target for the task (partial labels)."""
    return value is None or (isinstance(value, str) and not value.strip())


#: The `extra` key of a task whose label cells may give a class by its index (0, 1, ...) as well as by name.
LABEL_INDICES = "label_indices"


def takes_indices(task: TaskSpec) -> bool:
    """Whether the task says its label cells may be class indices (`extra.label_indices = true`)."""
    return bool(task.extra.get(LABEL_INDICES, False))


def check_label_indices(task: TaskSpec) -> None:
    """`label_indices` is true or false: a cell read as an index must be asked for, never guessed."""
    if not isinstance(task.extra[LABEL_INDICES], bool):
        raise ConfigError(f"task {task.name!r} has label_indices {task.extra[LABEL_INDICES]!r}: expected true or false")


def class_id(value: Any, task: TaskSpec) -> int | None:
    """A class given by name; by index only where the task says its labels are indices; None otherwise.

    A name always wins: with classes "1".."9", a cell "1" is the class named "1", never index 1. Without
    `label_indices`, a cell "0" is an error rather than silently becoming the first class.
    """
    value = str(value).strip()
    if value in task.classes:
        return task.classes.index(value)
    if takes_indices(task) and value.isdigit() and int(value) < len(task.classes):
        return int(value)
    return None


def expected_names(task: TaskSpec) -> str:
    """The valid cells of a task whose cells name classes, for the error naming an unusable one."""
    names = ", ".join(task.classes)
    if takes_indices(task):
        return f"{names} (or an index 0..{len(task.classes) - 1})"
    return f"{names} (an index only with extra.label_indices = true)"


def class_swap(task: TaskSpec, size: int) -> np.ndarray:
    """(size,) lookup table mapping each class id to its mirror image (itself unless in a flip pair)."""
    table = np.arange(size)
    for left, right in task.extra.get("flip_pairs", []):
        a, b = task.classes.index(left), task.classes.index(right)
        table[a], table[b] = b, a
    return table
