"""Export: the in-graph pre/postprocessing wrapper, ONNX export at fp32 / fp16 / int8, verification."""

from edgemtl.deploy.onnx_export import DEFAULT_OPSET, ExportOptions, ExportResult, export_onnx
from edgemtl.deploy.precision import CALIBRATION_METHODS, PRECISIONS
from edgemtl.deploy.verify import ParityReport, VerificationReport, verify_parity
from edgemtl.deploy.wrapper import ExportWrapper

__all__ = [
    "CALIBRATION_METHODS",
    "DEFAULT_OPSET",
    "PRECISIONS",
    "ExportOptions",
    "ExportResult",
    "ExportWrapper",
    "ParityReport",
    "VerificationReport",
    "export_onnx",
    "verify_parity",
]
