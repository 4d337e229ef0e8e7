"""`edgemtl info` as a call: what an .onnx file is, from its metadata and its graph. No PyTorch."""

from __future__ import annotations

from pathlib import Path

from edgemtl.errors import DeviceError, ForeignModelError
from edgemtl.runtime.engine import Engine, describe_graph


def describe_model(path: Path) -> list[str]:
    """Tasks, classes, input, precision, metrics and version of an edgemtl export, then its graph's
    inputs and outputs; for another ONNX file, the graph alone, said to be foreign."""
    try:
        engine = Engine(path, device="cpu")
    except ForeignModelError:
        return [f"{path}: an ONNX model, not an edgemtl export (no edgemtl.* metadata)", *describe_graph(path)]
    return [str(path), *engine.metadata.describe(), *describe_graph(path), *runtimes(path)]


def runtimes(path: Path) -> list[str]:
    """The backends installed here, and what `--device auto` serves this file with (checked, and why)."""
    from edgemtl.runtime.backends import BACKENDS

    installed = [
        f"{backend.name} {backend.version()} ({', '.join(backend.devices())})"
        for backend in BACKENDS.values()
        if backend.installed()
    ]
    missing = [backend.name for backend in BACKENDS.values() if not backend.installed()]
    lines = ["runtime " + "; ".join(installed) + (f"; not installed: {', '.join(missing)}" if missing else "")]
    try:
        engine = Engine(path, device="auto")
    except DeviceError as exc:
        return [*lines, f"device auto: none ({exc})"]
    return [*lines, f"device auto: {engine.choice or engine.providers[0]}"]
