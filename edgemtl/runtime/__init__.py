"""The embeddable runtime: numpy, onnxruntime and OpenCV only — never torch, click or matplotlib."""

from edgemtl.palette import class_colors
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.overlay import render_overlay
from edgemtl.runtime.results import (
    ClassificationResult,
    MultilabelResult,
    Prediction,
    RegressionResult,
    SegmentationResult,
)

__all__ = [
    "ClassificationResult",
    "Engine",
    "ModelMetadata",
    "MultilabelResult",
    "Prediction",
    "RegressionResult",
    "SegmentationResult",
    "class_colors",
    "render_overlay",
]
