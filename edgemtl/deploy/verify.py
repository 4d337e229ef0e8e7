"""Parity of the exported file with PyTorch, on real frames, through the runtime users will run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgemtl.deploy.wrapper import ExportWrapper
from edgemtl.errors import ExportError
from edgemtl.runtime.engine import Engine

PROBABILITY_TOLERANCE = 1e-4  # max |p_onnx - p_torch|: far below any decision threshold
VALUE_TOLERANCE = 1e-3  # regression values and raw logits, which are not bounded to [0, 1]
MIN_AGREEMENT = 0.999  # fraction of mask pixels, labels and flags that must match


@dataclass(frozen=True)
class ParityCheck:
    output: str
    measure: str  # "max_abs_diff" or "agreement"
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        return self.value <= self.limit if self.measure == "max_abs_diff" else self.value >= self.limit

    def __str__(self) -> str:
        relation = "<=" if self.measure == "max_abs_diff" else ">="
        verdict = "ok" if self.ok else "FAILED"
        return f"{self.output}: {self.measure} {self.value:.3g} ({relation} {self.limit:g}) {verdict}"


@dataclass(frozen=True)
class ParityReport:
    frames: int
    checks: tuple[ParityCheck, ...]

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)

    def value(self, output: str) -> float:
        return next(check.value for check in self.checks if check.output == output)


def _check(name: str, ours: np.ndarray, reference: np.ndarray) -> ParityCheck:
    field = name.rsplit("_", 1)[-1]
    if field in ("mask", "label", "flags"):
        return ParityCheck(name, "agreement", float(np.mean(ours == reference)), MIN_AGREEMENT)
    difference = float(np.max(np.abs(ours.astype(np.float64) - reference.astype(np.float64))))
    limit = PROBABILITY_TOLERANCE if field == "probs" else VALUE_TOLERANCE
    return ParityCheck(name, "max_abs_diff", difference, limit)


@torch.no_grad()
def verify_parity(path: Path, wrapper: ExportWrapper, frames: np.ndarray, batch_size: int = 32) -> ParityReport:
    """Run the same uint8 frames through PyTorch and through ONNX Runtime on the CPU; compare.

    Raises ExportError naming every output that is off, so a broken export cannot go unnoticed.
    """
    engine = Engine(path, device="cpu")
    names = wrapper.output_names
    ours: dict[str, list[np.ndarray]] = {name: [] for name in names}
    reference: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(frames), batch_size):
        batch = np.ascontiguousarray(frames[start : start + batch_size])
        for name, value in engine.run(batch).items():
            ours[name].append(value)
        for name, value in zip(names, wrapper(torch.from_numpy(batch))):
            reference[name].append(value.numpy())
    checks = tuple(_check(name, np.concatenate(ours[name]), np.concatenate(reference[name])) for name in names)
    report = ParityReport(len(frames), checks)
    if not report.passed:
        failures = "; ".join(str(check) for check in checks if not check.ok)
        raise ExportError(f"{path.name} disagrees with PyTorch on {len(frames)} frames: {failures}")
    return report
