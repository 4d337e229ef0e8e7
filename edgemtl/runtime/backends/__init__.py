"""The runtimes an Engine can run a file on, one entry each, and which one a device spec picks.

`BACKENDS` lists them; `open_runner` turns `--device` into an opened `Runner`:

- `cpu`, `cuda`, `tensorrt`: ONNX Runtime, as before;
- `openvino[:DEVICE][:PRECISION]`: OpenVINO, imported only then;
- `auto`: CUDA when it starts here; else OpenVINO on the CPU at f32 when it is installed, verified for this
  file and faster on it; else ONNX Runtime on the CPU. Why it chose is said once, at info level (`-v`).

Every target but ONNX Runtime on the CPU is checked against it first (`edgemtl.runtime.verified`); one that
disagrees raises ParityError naming the output and both values, or under `auto` is passed over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edgemtl.errors import DeviceError, ParityError
from edgemtl.runtime.backends.base import Backend, Port, Runner, Target
from edgemtl.runtime.backends.openvino_backend import OpenVinoBackend
from edgemtl.runtime.backends.ort_backend import OrtBackend
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.providers import CPU_PROVIDER, EngineOptions, check_model_path
from edgemtl.runtime.verified import Verdict, retimed, tolerance_for, verify

__all__ = ["BACKENDS", "DEVICE_HELP", "Backend", "Opened", "Port", "Runner", "Target", "open_runner", "parse_device"]

log = logging.getLogger("edgemtl")

BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (OrtBackend(), OpenVinoBackend())}
REFERENCE = Target("onnxruntime", "cpu")
DEVICE_HELP = "auto, cpu, cuda, tensorrt or openvino[:CPU|GPU|NPU][:f32|bf16|f16]"
_said: set[str] = set()


def parse_device(spec: str) -> Target:
    """The target a `--device` spec names (`auto` stays onnxruntime's "auto" until `open_runner` decides)."""
    head = str(spec).split(":")[0]
    for backend in BACKENDS.values():
        if backend.claims(head):
            return backend.parse(str(spec))
    raise DeviceError(f"unknown device {spec!r}: expected {DEVICE_HELP}")


@dataclass
class Opened:
    """The runner that serves the file, and why: the parity verdict (None for the reference itself) and,
    under `auto`, the reason it chose as it did."""

    runner: Runner
    metadata: ModelMetadata
    verdict: Verdict | None = None
    reason: str = ""


def _say_once(reason: str) -> None:
    if reason not in _said:
        log.info("device auto: %s", reason)
        _said.add(reason)


def _verified(path: Path, runner: Runner, options: EngineOptions, reference: Runner | None) -> Verdict:
    metadata = ModelMetadata.from_props(runner.metadata, str(path))
    backend = BACKENDS[runner.target.backend]
    tolerance = tolerance_for(runner.target, metadata, reduced_kernels=options.trt_fp16)

    def open_reference() -> Runner:
        return reference or BACKENDS[REFERENCE.backend].open(path, REFERENCE, options)

    return verify(path, runner, metadata, open_reference, backend.version(), tolerance)


def open_runner(path: Path, device: str, options: EngineOptions) -> Opened:
    """Open `path` on what `device` names, checked against the reference where it is not the reference."""
    check_model_path(path)
    target = parse_device(device)
    if device == "auto":
        return _open_auto(path, options)
    runner = BACKENDS[target.backend].open(path, target, options)
    metadata = ModelMetadata.from_props(runner.metadata, str(path))
    if target == REFERENCE or (target.backend == REFERENCE.backend and runner.providers[0] == CPU_PROVIDER):
        return Opened(runner, metadata)
    verdict = _verified(path, runner, options, None)
    if not verdict.ok:
        raise ParityError(f"{path.name}: {verdict.line()}; use --device cpu")
    log.info("%s", verdict.line())
    return Opened(runner, metadata, verdict)


def _open_auto(path: Path, options: EngineOptions) -> Opened:
    """CUDA when it starts; else OpenVINO's CPU at f32 when installed, verified and faster; else the CPU."""
    onnxruntime = BACKENDS[REFERENCE.backend].open(path, Target(REFERENCE.backend, "auto"), options)
    metadata = ModelMetadata.from_props(onnxruntime.metadata, str(path))
    # A file whose metadata and graph disagree is refused before any backend is timed, and in the
    # reference's words: the one-line error is the same whichever backend would have won.
    metadata.check_graph(onnxruntime.inputs, onnxruntime.outputs, str(path))
    if onnxruntime.providers[0] != CPU_PROVIDER:
        return Opened(onnxruntime, metadata, reason=f"{onnxruntime.providers[0]} (a GPU is here)")
    openvino = BACKENDS["openvino"]
    if not openvino.installed():
        reason = "onnxruntime on the CPU (openvino is not installed: pip install 'edgemtl[openvino]')"
        _say_once(reason)
        return Opened(onnxruntime, metadata, reason=reason)
    try:
        candidate = openvino.open(path, openvino.parse("openvino"), options)
        verdict = retimed(_verified(path, candidate, options, onnxruntime), candidate, onnxruntime, metadata)
    except DeviceError as exc:  # OpenVINO could not compile it: the reference serves, and says why
        reason = f"onnxruntime on the CPU ({exc})"
        _say_once(reason)
        return Opened(onnxruntime, metadata, reason=reason)
    if not verdict.ok:
        reason = f"onnxruntime on the CPU, not OpenVINO: {verdict.line()}"
    elif verdict.ms >= verdict.reference_ms:
        reason = f"onnxruntime on the CPU, not OpenVINO, which is correct but not faster here: {verdict.line()}"
    else:
        reason = f"OpenVINO: {verdict.line()}"
        _say_once(reason)
        return Opened(candidate, metadata, verdict, reason)
    _say_once(reason)
    return Opened(onnxruntime, metadata, verdict, reason)
