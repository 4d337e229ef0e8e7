"""Checked before it serves: a backend's outputs for a file against ONNX Runtime on the CPU (the reference).

A second runtime can compute a graph differently and say nothing (OpenVINO ignored the antialiasing of
frame-sized files' downscale). So any target other than the reference runs a few deterministic frames
first, and its outputs are compared with the reference's by the export's own rules (`edgemtl.runtime.parity`):
noise at the graph's input size, a smooth gradient (noise makes near-ties that are rare in camera frames),
and for a dynamic frame-sized file the same at a VGA frame too. Both are timed on the same frame, in turns,
so `device="auto"` can take the faster of two correct ones.

The verdict is cached on disk, one small JSON file per (file's SHA-256, target, backend version, onnxruntime
version, machine: architecture, CPU model and the device's own name where the backend gives one): opening the
same file on the same machine again costs a hash, not a second session and a check, and a cache shared
between machines (a network home, a copied folder) never hands one CPU's verdict to another. Only its
correctness is reused: `auto` times the two again at each open (`retimed`), because which runtime is
faster depends on what else the cores are doing (on a 2-core VM OpenVINO ran base at 384x640 1.5x faster
than ONNX Runtime when alone, and 2x slower beside a niced job), and a timing cached under load would make
the wrong choice for good. The folder is $EDGEMTL_CACHE_DIR, else $XDG_CACHE_HOME/edgemtl, else
~/.cache/edgemtl; when it cannot be written, the check simply runs again next time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemtl.machine import cpu_name
from edgemtl.runtime.backends.base import Runner, Target
from edgemtl.runtime.metadata import DYNAMIC, ModelMetadata
from edgemtl.runtime.parity import EXACT, Tolerance, compare_outputs
from edgemtl.runtime.timing import median_ms, time_calls

log = logging.getLogger("edgemtl")

#: Reduced precision (a bf16 / f16 hint, TensorRT fp16, an fp16 or int8 file's kernels that differ between
#: runtimes): probabilities within 0.05 and 98 % agreement. The check is for a backend that computes the graph
#: wrongly (56 % of a mask, labels off by 0.38), not for rounding; the metric gate (`edgemtl export`, and
#: benchmarks/backends.py for the hints) is what bounds the accuracy a reduced precision costs.
REDUCED = Tolerance(probability=0.05, value=0.05, agreement=0.98)
VERIFY_FRAME = (480, 640)  # a dynamic frame-sized file is also checked at a VGA camera's frame size
_NOISE_FRAMES = 3
_TIMED_RUNS = 10
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    """Whether `target` gives the reference's outputs for a file, and how fast each ran one frame (ms)."""

    target: str
    ok: bool
    failure: str  # the first failing check, one line ("" when ok)
    ms: float
    reference_ms: float
    cached: bool = False

    def line(self) -> str:
        """`openvino:f32 verified against onnxruntime on the CPU: 2.31 ms vs 3.70 ms` (or why it failed)."""
        if not self.ok:
            return f"{self.target} disagrees with onnxruntime on the CPU: {self.failure}"
        return (
            f"{self.target} verified against onnxruntime on the CPU{' (cached)' if self.cached else ''}: "
            f"{self.ms:.2f} ms vs {self.reference_ms:.2f} ms a frame"
        )


def cache_folder() -> Path:
    if os.environ.get("EDGEMTL_CACHE_DIR"):
        return Path(os.environ["EDGEMTL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgemtl"


def tolerance_for(target: Target, metadata: ModelMetadata, reduced_kernels: bool = False) -> Tolerance:
    """EXACT for an fp32 file at full precision; REDUCED for a hint below f32, reduced kernels, or a file
    whose own precision is below fp32 (each runtime rounds its fp16 and int8 arithmetic its own way)."""
    full = target.precision in (None, "f32") and not reduced_kernels and metadata.precision == "fp32"
    return EXACT if full else REDUCED


def verification_inputs(metadata: ModelMetadata) -> list[np.ndarray]:
    """The deterministic batches a target is checked on (batch 1, or the file's fixed batch)."""
    rng = np.random.default_rng(20261206)
    batch = metadata.batch or 1
    if metadata.features is not None:
        mean, std = np.asarray(metadata.features.mean), np.asarray(metadata.features.std)
        return [
            (mean + std * rng.standard_normal((batch, metadata.features.count))).astype(np.float32)
            for _ in range(_NOISE_FRAMES)
        ]
    height, width = metadata.graph_size
    sizes = [(height or metadata.input_size[0], width or metadata.input_size[1])]
    if metadata.frame_size == DYNAMIC:
        sizes.append(VERIFY_FRAME)
    batches = []
    for size in sizes:
        batches += [rng.integers(0, 256, (batch, *size, 3), dtype=np.uint8) for _ in range(_NOISE_FRAMES)]
        ramp = np.linspace(0, 255, size[0] * size[1] * 3).reshape(*size, 3)
        batches.append(np.broadcast_to(ramp.astype(np.uint8), (batch, *size, 3)).copy())
    return batches


@functools.cache
def this_cpu() -> str:
    """The architecture and CPU model ("x86_64 Intel(R) Xeon(R) ..."): a backend's kernels, and so its verdict,
    depend on them (AVX-512 or not, ARM's f16 default)."""
    return f"{platform.machine()} {cpu_name()}"


def _key(path: Path, runner: Runner, version: str, tolerance: Tolerance) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    machine = f"{this_cpu()}|{runner.device_name}"
    name = f"{digest}|{runner.target}|{version}|ort{ort.__version__}|{tolerance}|{machine}|v{_CACHE_VERSION}"
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _read(key: str) -> Verdict | None:
    try:
        data = json.loads((cache_folder() / "verified" / f"{key}.json").read_text())
        return Verdict(**{**data, "cached": True})
    except (OSError, ValueError, TypeError):
        return None


def _write(key: str, verdict: Verdict) -> None:
    folder = cache_folder() / "verified"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{key}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps({**asdict(verdict), "cached": False}))
        temporary.replace(folder / f"{key}.json")
    except OSError as exc:  # a read-only home: the check runs again next time, nothing else changes
        log.debug("verdict not cached in %s: %s", folder, exc)


def _timed(runner: Runner, reference: Runner, frames: np.ndarray) -> tuple[float, float]:
    """Median ms of each on one batch, in blocks A B A B, the better block of each. Not run by run in turns:
    ONNX Runtime's idle threads spin on the cores after a run and would slow whatever runs next."""
    best = {"ours": np.inf, "ref": np.inf}
    for _ in range(2):
        for name, which in (("ours", runner), ("ref", reference)):
            best[name] = min(best[name], median_ms(time_calls(lambda w=which: w.run(frames), _TIMED_RUNS, 3)))
    return best["ours"], best["ref"]


def retimed(verdict: Verdict, runner: Runner, reference: Runner, metadata: ModelMetadata) -> Verdict:
    """A cached verdict with this moment's timings of `runner` and `reference` (a new verdict is timed already)."""
    if not verdict.cached or not verdict.ok:
        return verdict
    ms, reference_ms = _timed(runner, reference, verification_inputs(metadata)[0])
    return replace(verdict, ms=ms, reference_ms=reference_ms)


def verify(
    path: Path,
    runner: Runner,
    metadata: ModelMetadata,
    reference: Callable[[], Runner],
    version: str,
    tolerance: Tolerance,
) -> Verdict:
    """The cached verdict for `runner` on this file, or a new one (`reference` opens ONNX Runtime on the CPU,
    called only when there is no cached verdict)."""
    key = _key(path, runner, version, tolerance)
    cached = _read(key)
    if cached is not None:
        return cached
    checked = reference()
    failure = ""
    for frames in verification_inputs(metadata):
        ours, theirs = runner.run(frames), checked.run(frames)
        names = (str(runner.target), "onnxruntime")
        failed = [check for check in compare_outputs(ours, theirs, tolerance, names, metadata.tasks) if not check.ok]
        if failed:
            size = "x".join(str(d) for d in frames.shape[1:3])
            failure = f"{failed[0]} (a deterministic {size} test input)"
            break
    ms, reference_ms = _timed(runner, checked, verification_inputs(metadata)[0])
    verdict = Verdict(str(runner.target), not failure, failure, ms, reference_ms)
    _write(key, verdict)
    return verdict
