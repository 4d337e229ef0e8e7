"""`edgemtl info` as a call: what an .onnx file is, from its metadata and its graph. No PyTorch."""

from __future__ import annotations

from pathlib import Path

from edgemtl.errors import ForeignModelError
from edgemtl.runtime.engine import Engine, describe_graph


def describe_model(path: Path) -> list[str]:
    """Tasks, classes, input, precision, metrics and version of an edgemtl export, then its graph's
    inputs and outputs; for another ONNX file, the graph alone, said to be foreign."""
    try:
        engine = Engine(path, device="cpu")
    except ForeignModelError:
        return [f"{path}: an ONNX model, not an edgemtl export (no edgemtl.* metadata)", *describe_graph(path)]
    return [str(path), *engine.metadata.describe(), *describe_graph(path)]
