"""The multi-task network, its blocks and its presets (PyTorch)."""

from edgemtl.model.net import MultiTaskNet
from edgemtl.model.preprocess import DEFAULT_MEAN, DEFAULT_STD, Preprocess
from edgemtl.model.presets import (
    PRESETS,
    ModelCost,
    Preset,
    check_input_size,
    create_model,
    get_preset,
    model_cost,
    model_stride,
)

__all__ = [
    "DEFAULT_MEAN",
    "DEFAULT_STD",
    "PRESETS",
    "ModelCost",
    "MultiTaskNet",
    "Preprocess",
    "Preset",
    "check_input_size",
    "create_model",
    "get_preset",
    "model_cost",
    "model_stride",
]
