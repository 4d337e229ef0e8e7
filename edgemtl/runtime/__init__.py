"""The embeddable runtime: numpy, onnxruntime and OpenCV only (openvino when a device asks for it) — never torch,
click or matplotlib."""

from edgemtl.palette import class_colors
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.multicam import MulticamStats, run_multicamera
from edgemtl.runtime.overlay import Overlay, render_overlay
from edgemtl.runtime.pipeline import PipelineStats, run_pipeline
from edgemtl.runtime.providers import EngineOptions
from edgemtl.runtime.results import (
    ClassificationResult,
    MultilabelResult,
    Prediction,
    RegressionResult,
    SegmentationResult,
)
from edgemtl.runtime.results_stream import open_results
from edgemtl.runtime.sinks import open_output
from edgemtl.runtime.sources import Frame, open_source
from edgemtl.runtime.steady import Smoothing, Steadier, parse_smoothing

__all__ = [
    "ClassificationResult",
    "Engine",
    "EngineOptions",
    "Frame",
    "ModelMetadata",
    "MulticamStats",
    "MultilabelResult",
    "Overlay",
    "PipelineStats",
    "Prediction",
    "RegressionResult",
    "SegmentationResult",
    "Smoothing",
    "Steadier",
    "class_colors",
    "open_output",
    "open_results",
    "open_source",
    "parse_smoothing",
    "render_overlay",
    "run_multicamera",
    "run_pipeline",
]
