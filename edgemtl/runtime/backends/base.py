"""What every backend gives the Engine: one small interface, so that a new runtime is one entry.

A `Backend` turns a device spec (`cpu`, `cuda`, `openvino:bf16`, ...) into a `Target` and opens a file
on it as a `Runner`: the graph's inputs and outputs, the file's metadata, and `run(frames, pool)`.
The Engine does everything else (checks, resizing, results) the same way whatever runs the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.providers import EngineOptions


@dataclass(frozen=True)
class Port:
    """A graph input or output as the metadata checks read it (onnxruntime's NodeArg has the same fields)."""

    name: str
    type: str  # ONNX type string: "tensor(uint8)", "tensor(float)", ...
    shape: tuple[int | str, ...]  # a str is an axis the graph leaves open


@dataclass(frozen=True)
class Target:
    """Where a file runs: a backend, its device, and (OpenVINO) the inference precision hint."""

    backend: str  # a key of BACKENDS
    device: str  # onnxruntime: "cpu" / "cuda" / "tensorrt"; OpenVINO: "CPU", "GPU", "GPU.1", "NPU"
    precision: str | None = None  # OpenVINO's hint: "f32", "bf16", "f16"; None for onnxruntime

    def __str__(self) -> str:
        """The spec that names it again (`--device` accepts it)."""
        if self.backend == "onnxruntime":
            return self.device
        return ":".join(part for part in (self.backend, self.device, self.precision) if part)


class Runner(Protocol):
    """One file opened on one target."""

    target: Target
    inputs: list[Port]
    outputs: list[Port]
    metadata: dict[str, str]  # the file's metadata_props
    io_binding: bool  # outputs go to buffers bound once (onnxruntime's I/O binding)
    # The device the target runs on as its runtime names it (OpenVINO's FULL_DEVICE_NAME, e.g. an Intel GPU's
    # model), "" where that is not cheap to ask: part of the key of a cached parity verdict, beside this CPU's
    device_name: str

    @property
    def providers(self) -> list[str]:
        """What really runs the graph, first the main one: ORT's providers, or "OpenVINO CPU (f32)"."""
        ...

    def run(self, frames: np.ndarray, pool: BufferPool | None = None) -> dict[str, np.ndarray]:
        """Outputs by name for one input batch (already checked); into arrays from `pool` where it applies."""
        ...


class Backend(Protocol):
    """A runtime that can serve an exported file."""

    name: str
    reference: bool  # the backend the others are checked against (onnxruntime on the CPU)

    def claims(self, head: str) -> bool:
        """Whether a device spec's first part (before any ':') is this backend's."""
        ...

    def parse(self, spec: str) -> Target:
        """The target a device spec names; DeviceError for one this backend does not have."""
        ...

    def installed(self) -> bool: ...

    def version(self) -> str: ...

    def devices(self) -> list[str]:
        """The device specs this backend can run on here (listed by `edgemtl info` and bench)."""
        ...

    def open(self, path: Path, target: Target, options: EngineOptions) -> Runner: ...
