"""The graph that ships: raw camera frames in, ready-to-use results out.

Putting the cast, normalization, transpose, softmax and argmax inside the graph means an integrator
in C++, TensorRT or Triton writes no pre- or postprocessing, and cannot get it subtly wrong. Each
kind's postprocessing is its definition's (edgemtl.kinds), the same that training scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgemtl.kinds import kind_of
from edgemtl.model import MultiTaskNet, Preprocess
from edgemtl.model.detection import graph_parts
from edgemtl.model.frame import FrameSizedNet
from edgemtl.palette import class_colors
from edgemtl.runtime.metadata import OVERLAY_OUTPUT, output_name, task_output_fields


@dataclass(frozen=True)
class OverlaySpec:
    """The frame with a segmentation task's mask blended in, as one more uint8 output: what the host's
    `Overlay` draws (class 0 left clear, the palette's colours), so a pipeline only adds text."""

    task: str
    alpha: float = 0.5


class ExportWrapper(nn.Module):
    """uint8 (N, H, W, 3) BGR frames → a tuple of outputs in the order of `output_names`.

    `model` a `FrameSizedNet`: the graph takes camera frames and resizes them itself (a frame-sized file).
    While the wrapper runs, detection heads hand their undecoded parts to the selection, which decodes only
    the boxes it keeps (edgemtl.model.detection.graph_parts); the model is unchanged after.
    """

    def __init__(
        self,
        model: MultiTaskNet | FrameSizedNet,
        mean: Sequence[float],
        std: Sequence[float],
        raw_logits: bool = False,
        preprocess: nn.Module | None = None,
        overlay: OverlaySpec | None = None,
    ) -> None:
        super().__init__()
        self.preprocess = preprocess or Preprocess(mean, std)  # a vector model's Standardize is given
        self.model = model.eval()
        self.overlay = overlay
        if overlay is not None:  # per class: its colour times alpha, and what is left of the frame's pixel
            task = next(t for t in model.tasks if t.name == overlay.task)
            colors = torch.tensor(class_colors(len(task.classes)), dtype=torch.float32) * overlay.alpha
            keep = torch.full((len(task.classes), 3), 1 - overlay.alpha)
            colors[0], keep[0] = 0.0, 1.0  # class 0 stays clear
            self.register_buffer("keep_table", keep, persistent=False)
            self.register_buffer("color_table", colors, persistent=False)
        self.outputs = {
            task.name: {f: output_name(task, f) for f in task_output_fields(task, raw_logits)} for task in model.tasks
        }
        self.constants: dict[str, list[str]] = {}  # task name → the constants its postprocessing reads
        for task in model.tasks:
            constants = kind_of(task).constants(task)  # e.g. per-label thresholds from the spec
            self.constants[task.name] = list(constants)
            for constant, values in constants.items():
                self.register_buffer(_buffer(constant, task.name), torch.tensor(values), persistent=False)

    @property
    def output_names(self) -> list[str]:
        names = [name for fields in self.outputs.values() for name in fields.values()]
        return [*names, OVERLAY_OUTPUT] if self.overlay is not None else names

    def forward(self, frames: Tensor) -> tuple[Tensor, ...]:
        with graph_parts(self.model):
            raw = self.model(self.preprocess(frames))
        results: list[Tensor] = []
        for task in self.model.tasks:
            kind, logits = kind_of(task), raw[task.name]
            constants = {c: getattr(self, _buffer(c, task.name)) for c in self.constants[task.name]}
            outputs = kind.postprocess(task, logits, constants)
            if self.overlay is not None and task.name == self.overlay.task:
                mask = dict(zip(kind.outputs, outputs))[kind.scored_field]
            results += outputs
            if "logits" in self.outputs[task.name]:
                results.append(logits)
        if self.overlay is not None:
            results.append(self._blend(frames, mask))
        return tuple(results)

    def _blend(self, frames: Tensor, mask: Tensor) -> Tensor:
        """uint8 (N, H, W, 3): frame × (1 - alpha) + colour × alpha where the class is not 0, rounded as
        OpenCV's addWeighted rounds. Per-class tables (the frame's share, colour × alpha) gathered per pixel
        and one multiply-add of same-shaped tensors: a select between two images, or a multiply broadcast
        over the channels, measured several times slower in ONNX Runtime's CPU kernels."""
        classes = mask.flatten().long()
        keep = self.keep_table.index_select(0, classes).view(*mask.shape, 3)
        colors = self.color_table.index_select(0, classes).view(*mask.shape, 3)
        return torch.round(frames.float() * keep + colors).to(torch.uint8)


def _buffer(constant: str, task_name: str) -> str:
    return f"{constant}_{task_name}"
