"""Export: the in-graph pre/postprocessing wrapper, ONNX export with metadata, parity checks."""

from edgemtl.deploy.onnx_export import DEFAULT_OPSET, ExportResult, export_onnx
from edgemtl.deploy.verify import ParityReport, verify_parity
from edgemtl.deploy.wrapper import ExportWrapper

__all__ = ["DEFAULT_OPSET", "ExportResult", "ExportWrapper", "ParityReport", "export_onnx", "verify_parity"]
