"""When two runs of one exported file agree: the comparison rules, NumPy only.

One set of rules for both places that compare outputs: export (the file against PyTorch,
`edgemtl.deploy.verify`) and the runtime (a backend against ONNX Runtime on the CPU, `edgemtl.runtime.verified`).
Probabilities must be within a tolerance; ids and flags (labels, masks) must agree; an image output (the
overlay) is compared pixel by pixel like the mask it is drawn from, since one mask pixel that flips moves
its overlay pixel by up to the full blend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from edgemtl.kinds import KINDS, kind_of
from edgemtl.runtime.metadata import OVERLAY_OUTPUT, output_name
from edgemtl.tasks import TaskSpec

PROBABILITY_TOLERANCE = 1e-4  # max |p_a - p_b|: far below any decision threshold
VALUE_TOLERANCE = 1e-3  # regression values and raw logits, which are not bounded to [0, 1]
MIN_AGREEMENT = 0.999  # fraction of mask pixels, labels, flags and overlay pixels that must match
PIXEL_LEVELS = 1  # an overlay pixel matches when each channel is within this many levels (the blend's rounding)
IMAGE_OUTPUTS = frozenset({OVERLAY_OUTPUT})  # uint8 (N, H, W, 3) images, compared by pixel agreement


@dataclass(frozen=True)
class Tolerance:
    """How far two runs may be apart: `probability` for probabilities, `value` for unbounded numbers,
    `agreement` the least fraction of ids, flags and image pixels that must be equal."""

    probability: float = PROBABILITY_TOLERANCE
    value: float = VALUE_TOLERANCE
    agreement: float = MIN_AGREEMENT


EXACT = Tolerance()


@dataclass(frozen=True)
class ParityCheck:
    output: str
    measure: str  # "max_abs_diff" or "agreement"
    value: float
    limit: float
    detail: str = ""  # where a failing check is worst: both runs' values there

    @property
    def ok(self) -> bool:
        return self.value <= self.limit if self.measure == "max_abs_diff" else self.value >= self.limit

    def __str__(self) -> str:
        relation = "<=" if self.measure == "max_abs_diff" else ">="
        verdict = "ok" if self.ok else "FAILED"
        detail = f", {self.detail}" if self.detail and not self.ok else ""
        return f"{self.output}: {self.measure} {self.value:.3g} ({relation} {self.limit:g}) {verdict}{detail}"


def _worst(ours: np.ndarray, reference: np.ndarray, differs: np.ndarray, names: tuple[str, str]) -> str:
    """Both runs' values at the first place they differ most, e.g. `ours 0.61 vs reference 0.23 at (0, 2)`."""
    if not differs.any():
        return ""
    gap = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
    while gap.ndim > differs.ndim:  # an image's channels: the pixel's largest
        gap = gap.max(-1)
    index = np.unravel_index(int(np.argmax(np.where(differs, gap, -1))), differs.shape)
    a, b = ours[index], reference[index]
    floating = np.issubdtype(ours.dtype, np.floating)
    show = (lambda v: f"{float(v):.4g}") if floating else (lambda v: str(np.asarray(v).tolist()))
    return f"{names[0]} {show(a)} vs {names[1]} {show(b)} at {tuple(int(i) for i in index)}"


def check_output(
    name: str,
    ours: np.ndarray,
    reference: np.ndarray,
    tolerance: Tolerance = EXACT,
    names: tuple[str, str] = ("ours", "reference"),
) -> ParityCheck:
    """One output of two runs compared under its rule (`names`: what to call each run in the detail)."""
    field = name.rsplit("_", 1)[-1]
    if name in IMAGE_OUTPUTS:
        gap = np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max(axis=-1)
        differs = gap > PIXEL_LEVELS
        detail = _worst(ours, reference, differs, names)
        return ParityCheck(name, "agreement", float(1 - differs.mean()), tolerance.agreement, detail)
    if any(field in kind.exact_outputs for kind in KINDS.values()):  # ids and flags: agree or not
        differs = ours != reference
        detail = _worst(ours, reference, differs, names)
        return ParityCheck(name, "agreement", float(1 - differs.mean()), tolerance.agreement, detail)
    gap = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
    limit = tolerance.probability if field == "probs" else tolerance.value
    detail = _worst(ours, reference, gap > limit, names)
    return ParityCheck(name, "max_abs_diff", float(gap.max(initial=0.0)), limit, detail)


def compare_outputs(
    ours: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    tolerance: Tolerance = EXACT,
    names: tuple[str, str] = ("ours", "reference"),
    tasks: Iterable[TaskSpec] = (),
) -> tuple[ParityCheck, ...]:
    """Every output of `reference` compared with the same output of `ours`: a task whose kind compares its
    outputs together (`KindDef.parity`: detection matches boxes one to one, in any order) as its kind says,
    every other output under its own rule."""
    checks: list[ParityCheck] = []
    compared: set[str] = set()
    for task in tasks:
        fields = {field: output_name(task, field) for field in kind_of(task).outputs}
        fields = {field: name for field, name in fields.items() if name in reference}
        rows = kind_of(task).parity(
            task, {f: ours[n] for f, n in fields.items()}, {f: reference[n] for f, n in fields.items()}
        )
        for field, measure, value, limit in rows or []:
            checks.append(ParityCheck(fields[field], measure, value, limit))
            compared.update(fields.values())
    rest = (name for name in reference if name not in compared)
    return (*checks, *(check_output(name, ours[name], reference[name], tolerance, names) for name in rest))
