"""The graph that ships: raw camera frames in, ready-to-use results out.

Putting the cast, normalization, transpose, softmax and argmax inside the graph means an integrator
in C++, TensorRT or Triton writes no pre- or postprocessing, and cannot get it subtly wrong. Each
kind's postprocessing is its definition's (edgemtl.kinds), the same that training scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgemtl.kinds import kind_of
from edgemtl.model import FrameResize, MultiTaskNet, Preprocess
from edgemtl.runtime.metadata import output_name, task_output_fields


class ExportWrapper(nn.Module):
    """uint8 (N, H, W, 3) BGR frames → a tuple of outputs in the order of `output_names`.

    `frame_size` (with `resize`, the policy): the graph takes frames of that camera size and resizes them to
    `input_size` itself, exactly as the Engine's `prepare` would (`FrameResize`); None: frames come at the
    model's size.
    """

    def __init__(
        self,
        model: MultiTaskNet,
        mean: Sequence[float],
        std: Sequence[float],
        raw_logits: bool = False,
        *,
        frame_size: tuple[int, int] | None = None,
        input_size: tuple[int, int] | None = None,
        resize: str = "stretch",
    ) -> None:
        super().__init__()
        if frame_size is not None and input_size is None:
            raise ValueError("a frame-sized wrapper needs the model's input_size to resize to")
        self.resize = FrameResize(frame_size, input_size, resize) if frame_size is not None else nn.Identity()
        self.preprocess = Preprocess(mean, std)
        self.model = model.eval()
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
        return [name for fields in self.outputs.values() for name in fields.values()]

    def forward(self, frames: Tensor) -> tuple[Tensor, ...]:
        raw = self.model(self.preprocess(self.resize(frames)))
        results: list[Tensor] = []
        for task in self.model.tasks:
            logits = raw[task.name]
            constants = {c: getattr(self, _buffer(c, task.name)) for c in self.constants[task.name]}
            results += kind_of(task).postprocess(task, logits, constants)
            if "logits" in self.outputs[task.name]:
                results.append(logits)
        return tuple(results)


def _buffer(constant: str, task_name: str) -> str:
    return f"{constant}_{task_name}"
