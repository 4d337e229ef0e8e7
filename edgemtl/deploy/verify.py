"""Proof that an exported file behaves like the PyTorch model, measured through the runtime users run.

Two checks. Parity (fp32): the same frames give the same probabilities and masks, to 1e-4. Metrics
(every precision): each task's headline metric on labelled validation frames, PyTorch against the
file, with the drop in points held to a tolerance; plus the file's size and latency on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgemtl.data import ArrayDataset
from edgemtl.deploy.wrapper import ExportWrapper
from edgemtl.errors import ExportError
from edgemtl.kinds import kind_of
from edgemtl.metrics import higher_is_better, primary_metric
from edgemtl.model import MultiTaskNet
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.parity import ParityCheck, compare_outputs
from edgemtl.runtime.scoring import engine_batches, fill_batch, score_engine
from edgemtl.runtime.timing import median_ms, time_calls, time_interleaved
from edgemtl.tasks import TaskSpec
from edgemtl.train.validate import validate_model

#: Points (accuracy, mIoU, F1 × 100; for MAE, % of PyTorch's MAE) a precision may lose by default.
DEFAULT_MAX_DROP = {"fp32": 0.1, "fp16": 0.5, "int8": 1.0}


@dataclass(frozen=True)
class ParityReport:
    frames: int
    checks: tuple[ParityCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    def value(self, output: str) -> float:
        return next(check.value for check in self.checks if check.output == output)


@torch.no_grad()
def verify_parity(path: Path, wrapper: ExportWrapper, frames: np.ndarray, batch_size: int = 32) -> ParityReport:
    """Run the same uint8 frames through PyTorch and through ONNX Runtime on the CPU; compare.

    Raises ExportError naming every output that is off, so a broken export cannot go unnoticed.
    """
    engine = Engine(path, device="cpu")
    names = wrapper.output_names
    ours: dict[str, list[np.ndarray]] = {name: [] for name in names}
    reference: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for rows, batch in engine_batches(engine, frames, batch_size):
        count = rows.stop - rows.start  # a fixed-batch export's last batch is padded; padding is not compared
        batch = np.ascontiguousarray(batch)
        for name, value in engine.run(batch).items():
            ours[name].append(value[:count])
        for name, value in zip(names, wrapper(torch.from_numpy(batch))):
            reference[name].append(value.numpy()[:count])
    mine = {name: np.concatenate(values) for name, values in ours.items()}
    theirs = {name: np.concatenate(values) for name, values in reference.items()}
    checks = compare_outputs(mine, theirs, names=("ONNX", "PyTorch"), tasks=wrapper.model.tasks)
    report = ParityReport(len(frames), checks)
    if not report.passed:
        failures = "; ".join(str(check) for check in checks if not check.ok)
        raise ExportError(f"{path.name} disagrees with PyTorch on {len(frames)} frames: {failures}")
    return report


@dataclass(frozen=True)
class MetricComparison:
    task: str
    metric: str
    pytorch: float
    exported: float
    higher_is_better: bool = True
    checked: bool = True  # False: shown for information (a regression's per-value MAE), never fails the export

    @property
    def drop(self) -> float:
        """Points lost by the export; negative when it did better."""
        if self.higher_is_better:
            return (self.pytorch - self.exported) * 100
        return (self.exported - self.pytorch) / max(abs(self.pytorch), 1e-12) * 100


def _compared(task: TaskSpec, metrics: dict) -> list[str]:
    """The headline metric, then a regression's per-value MAE (mae_<name>), which only informs."""
    primary = primary_metric(task)
    values = [f"{primary}_{name}" for name in task.classes if not kind_of(task).categorical]
    return [primary, *(name for name in values if name in metrics)]


@dataclass(frozen=True)
class VerificationReport:
    precision: str
    frames: int
    comparisons: tuple[MetricComparison, ...]
    max_drop: float
    size_bytes: int
    latency_ms: float  # one run of `batch` frames
    batch: int = 1

    @property
    def failures(self) -> list[MetricComparison]:
        return [c for c in self.comparisons if c.checked and c.drop > self.max_drop]

    def lines(self, data: str = "the validation set") -> list[str]:
        """A table: one row per task, then which frames it scored (`data`), size and latency."""
        rows = [f"{'task':<14} {'metric':<10} {'PyTorch':>9} {self.precision + ' file':>10} {'drop (pt)':>9}"]
        for c in self.comparisons:
            verdict = "" if c.drop <= self.max_drop or not c.checked else f"  > {self.max_drop:g} allowed"
            rows.append(f"{c.task:<14} {c.metric:<10} {c.pytorch:>9.4f} {c.exported:>10.4f} {c.drop:>9.2f}{verdict}")
        rows.append(
            f"{self.frames} frames of {data}; file {self.size_bytes / 1e6:.2f} MB; "
            f"{self.latency_ms:.2f} ms per batch of {self.batch} (CPU, this machine)"
        )
        return rows


def compare_metrics(
    path: Path,
    model: MultiTaskNet,
    preprocess: torch.nn.Module,  # Preprocess, a vector model's Standardize, or none for a frame-sized net
    data: ArrayDataset,
    precision: str,
    max_drop: float,
    batch_size: int = 32,
) -> VerificationReport:
    """Each task's headline metric for PyTorch (fp32) and for the file, on the same labelled frames."""
    reference = validate_model(model, data, preprocess)
    engine = Engine(path, device="cpu")
    exported = score_engine(engine, data.inputs, data.targets, batch_size)
    comparisons = tuple(
        MetricComparison(
            task.name,
            metric,
            reference[task.name][metric],
            exported[task.name][metric],
            higher_is_better(task),
            checked=metric == primary_metric(task),
        )
        for task in model.tasks
        for metric in _compared(task, reference[task.name])
    )
    batch = engine.metadata.batch or 1
    frames = fill_batch(data.inputs[:batch], batch)
    latency = median_ms(time_calls(lambda: engine.run(frames), runs=50, warmup=5))
    return VerificationReport(precision, len(data), comparisons, max_drop, path.stat().st_size, latency, batch)


@dataclass(frozen=True)
class SpeedAgainstFp32:
    """A reduced-precision file's latency beside the fp32 graph it came from, timed in turns on this machine:
    in ONNX Runtime on the CPU, and in OpenVINO (at its f32 hint, where int8 kernels still run int8) when
    it is installed."""

    precision: str
    ms: float
    fp32_ms: float
    openvino_ms: float | None = None
    openvino_fp32_ms: float | None = None

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.ms if self.ms else 0.0

    def line(self) -> str:
        verdict = (
            f"slower than fp32 on this machine: keep fp32 here, or measure {self.precision} on the target"
            if self.speedup < 1
            else "faster than fp32 on this machine"
        )
        line = (
            f"{self.precision} runs {self.ms:.2f} ms per frame, fp32 {self.fp32_ms:.2f} ms "
            f"({self.speedup:.2f}x, CPU, timed in turns): {verdict}"
        )
        if self.openvino_ms and self.openvino_fp32_ms:
            ratio = self.openvino_fp32_ms / self.openvino_ms
            line += (
                f"; in OpenVINO {self.openvino_ms:.2f} ms, fp32 {self.openvino_fp32_ms:.2f} ms ({ratio:.2f}x, "
                f"{ratio * self.fp32_ms / self.openvino_fp32_ms:.2f}x onnxruntime's fp32)"
            )
        return line


def speed_against_fp32(
    path: Path, fp32_path: Path, precision: str, frames: np.ndarray, runs: int = 50
) -> SpeedAgainstFp32:
    """`frames`: one batch as both graphs take it (uint8 frames, or float32 feature rows). Plain ONNX Runtime
    sessions on the CPU, as the Engine runs there (the fp32 graph carries no metadata yet); then OpenVINO's
    compiled models of both, where it is installed."""
    import onnxruntime as ort

    sessions = {
        name: ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        for name, f in (("file", path), ("fp32", fp32_path))
    }
    calls = {name: (lambda s=s: s.run(None, {s.get_inputs()[0].name: frames})) for name, s in sessions.items()}
    timings = time_interleaved(calls, runs, warmup=5)
    del sessions, calls  # ORT's threads spin a while after a run: gone before OpenVINO is timed
    openvino = _openvino_ms({"file": path, "fp32": fp32_path}, frames, runs)
    return SpeedAgainstFp32(
        precision, median_ms(timings["file"]), median_ms(timings["fp32"]), openvino.get("file"), openvino.get("fp32")
    )


def _openvino_ms(paths: dict[str, Path], frames: np.ndarray, runs: int) -> dict[str, float]:
    """Median ms of each file in OpenVINO on the CPU at its f32 hint, in turns; {} without openvino."""
    from edgemtl.runtime.backends import BACKENDS

    if not BACKENDS["openvino"].installed():
        return {}
    import openvino

    core = openvino.Core()
    requests = {
        name: core.compile_model(str(p), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
        for name, p in paths.items()
    }
    calls = {name: (lambda r=r: r.infer({0: frames})) for name, r in requests.items()}
    return {name: median_ms(t) for name, t in time_interleaved(calls, runs, warmup=5).items()}


#: The precision an OpenVINO inference hint computes in, as the export gate names it: its default max drop.
HINT_PRECISION = {"f32": "fp32", "bf16": "fp16", "f16": "fp16"}


def compare_backend_metrics(
    path: Path, device: str, data: ArrayDataset, max_drop: float | None = None, batch_size: int = 32
) -> VerificationReport:
    """Each task's headline metric for the file on ONNX Runtime's CPU against the file on `device` (e.g.
    "openvino:bf16"), on the same labelled frames: the export's per-task gate applied to a backend's precision
    hint (bf16 and f16 held to fp16's drop). In the report, "pytorch" holds the reference runtime's figures."""
    reference, engine = Engine(path, device="cpu"), Engine(path, device=device)
    hint = engine.target.precision or "f32"
    limit = DEFAULT_MAX_DROP[HINT_PRECISION.get(hint, "fp16")] if max_drop is None else max_drop
    ours = score_engine(engine, data.inputs, data.targets, batch_size)
    theirs = score_engine(reference, data.inputs, data.targets, batch_size)
    comparisons = tuple(
        MetricComparison(task.name, primary_metric(task), theirs[task.name][primary_metric(task)],
                         ours[task.name][primary_metric(task)], higher_is_better(task))
        for task in engine.tasks
    )  # fmt: skip
    frames = fill_batch(data.inputs[: engine.metadata.batch or 1], engine.metadata.batch or 1)
    latency = median_ms(time_calls(lambda: engine.run(frames), runs=30, warmup=5))
    return VerificationReport(str(engine.target), len(data), comparisons, limit, path.stat().st_size, latency)
