"""The multi-task network, its blocks and its presets (PyTorch)."""

from edgemtl.model.inputs import build_model, input_preprocess
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
from edgemtl.model.vector import (
    VECTOR_PRESETS,
    Standardize,
    VectorPreset,
    create_vector_model,
    fit_value_heads,
    get_vector_preset,
)

__all__ = [
    "DEFAULT_MEAN",
    "DEFAULT_STD",
    "PRESETS",
    "VECTOR_PRESETS",
    "ModelCost",
    "MultiTaskNet",
    "Preprocess",
    "Preset",
    "Standardize",
    "VectorPreset",
    "build_model",
    "check_input_size",
    "create_model",
    "create_vector_model",
    "fit_value_heads",
    "get_preset",
    "get_vector_preset",
    "input_preprocess",
    "model_cost",
    "model_stride",
]
