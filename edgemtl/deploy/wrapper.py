"""The graph that ships: raw camera frames in, ready-to-use results out.

Putting the cast, normalization, transpose, softmax and argmax inside the graph means an integrator
in C++, TensorRT or Triton writes no pre- or postprocessing, and cannot get it subtly wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from edgemtl.model import MultiTaskNet, Preprocess
from edgemtl.runtime.metadata import output_name, task_output_fields
from edgemtl.tasks import TaskKind


class ExportWrapper(nn.Module):
    """uint8 (N, H, W, 3) BGR frames → a tuple of outputs in the order of `output_names`."""

    def __init__(
        self,
        model: MultiTaskNet,
        mean: Sequence[float],
        std: Sequence[float],
        raw_logits: bool = False,
    ) -> None:
        super().__init__()
        self.preprocess = Preprocess(mean, std)
        self.model = model.eval()
        self.outputs = {
            task.name: {f: output_name(task, f) for f in task_output_fields(task, raw_logits)} for task in model.tasks
        }
        for task in model.tasks:
            if task.kind is TaskKind.MULTILABEL:  # per-label thresholds from the spec, constants in the graph
                self.register_buffer(_threshold_buffer(task.name), torch.tensor(task.thresholds), persistent=False)

    @property
    def output_names(self) -> list[str]:
        return [name for fields in self.outputs.values() for name in fields.values()]

    def forward(self, frames: Tensor) -> tuple[Tensor, ...]:
        raw = self.model(self.preprocess(frames))
        results: list[Tensor] = []
        for task in self.model.tasks:
            logits = raw[task.name]
            if task.kind is TaskKind.CLASSIFICATION:
                probs = torch.softmax(logits, dim=1)  # (N, C)
                results += [probs, probs.argmax(1)]  # label: (N,) int64
            elif task.kind is TaskKind.MULTILABEL:
                probs = torch.sigmoid(logits)  # (N, L)
                thresholds = getattr(self, _threshold_buffer(task.name))  # (L,)
                results += [probs, (probs > thresholds).to(torch.uint8)]
            elif task.kind is TaskKind.SEGMENTATION:
                results.append(logits.argmax(1).to(torch.uint8))  # (N, H, W)
            else:
                results.append(logits)  # regression values (N, K)
            if "logits" in self.outputs[task.name]:
                results.append(logits)
        return tuple(results)


def _threshold_buffer(task_name: str) -> str:
    return f"thresholds_{task_name}"
