"""What exporting a vector model changes: its example input, input name, metadata and allowed options.

The graph is the image path's (`ExportWrapper`: preprocessing, the net, each kind's postprocessing), fed
float32 (N, F) raw feature rows instead of uint8 frames and standardizing them first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from edgemtl.errors import ConfigError
from edgemtl.runtime.features import VECTOR_INPUT_NAME, VECTOR_LAYOUT
from edgemtl.runtime.metadata import INPUT_NAME

if TYPE_CHECKING:
    from edgemtl.deploy.onnx_export import ExportOptions
    from edgemtl.train.checkpoint import Checkpoint

#: Precisions a vector export offers: an MLP of a few thousand weights runs in microseconds in fp32, and
#: int8 calibration would need feature rows instead of frames (not implemented).
VECTOR_PRECISIONS = ("fp32", "fp16")


def check_vector_export(checkpoint: Checkpoint, options: ExportOptions) -> None:
    """Refuse options that only mean something for frames, naming the option and what to do."""
    if options.precision not in VECTOR_PRECISIONS:
        raise ConfigError(
            f"precision {options.precision!r} is not available for a vector model: expected one of "
            f"{', '.join(VECTOR_PRECISIONS)} (its MLP already runs in microseconds in fp32)"
        )
    if options.input_size is not None and tuple(options.input_size) != tuple(checkpoint.input_size):
        raise ConfigError(
            "--input-size / --frame-size are for image models: a vector model takes rows of "
            f"{checkpoint.features.count} features; drop the option"
        )


def input_name(checkpoint: Checkpoint) -> str:
    return INPUT_NAME if checkpoint.features is None else VECTOR_INPUT_NAME


def example_input(checkpoint: Checkpoint, batch: int, size: tuple[int, int]) -> torch.Tensor:
    """What the exporter traces with: black frames, or rows at the training means (raw units)."""
    if checkpoint.features is None:
        return torch.zeros(batch, *size, 3, dtype=torch.uint8)
    return torch.tensor(checkpoint.features.mean, dtype=torch.float32).repeat(batch, 1)


def vector_metadata(checkpoint: Checkpoint) -> dict[str, Any]:
    """ModelMetadata fields that describe a vector model's input; none for an image model."""
    features = checkpoint.features
    if features is None:
        return {}
    return {
        "features": features,
        "input_size": (1, features.count),
        "mean": features.mean,
        "std": features.std,
        "input_name": VECTOR_INPUT_NAME,
        "layout": VECTOR_LAYOUT,
        "color_order": "",
        "input_dtype": "float32",
    }
