"""The one way edgemtl times a call: warm-up runs first, then `perf_counter` around each timed run.

Benchmarks, `edgemtl bench`, export verification and the demo all time through here, so their figures
are taken alike. NumPy only, like the rest of the runtime.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np


def time_calls(function: Callable[[], object], runs: int, warmup: int = 10) -> np.ndarray:
    """Seconds per call over `runs` calls, after `warmup` untimed ones (first calls allocate and tune)."""
    return time_interleaved({"call": function}, runs, warmup)["call"]


def time_interleaved(
    functions: Mapping[str, Callable[[], object]], runs: int, warmup: int = 10
) -> dict[str, np.ndarray]:
    """Seconds per call of each function, the functions taking turns run by run.

    On a shared machine load drifts over a measurement; interleaving exposes every function to the same
    drift, so their ratio holds even when the absolute figures do not. The order rotates each run, so no
    function always follows the same one: a call can slow the next (PyTorch's or ONNX Runtime's idle
    threads still spin on the cores for a while after they return).
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    names = list(functions)
    timings = {name: np.empty(runs) for name in names}
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            timings[name][index] = time.perf_counter() - start
    return timings


def median_ms(timings: np.ndarray) -> float:
    """The median of timings in seconds, in milliseconds: robust to the spikes a busy machine adds."""
    return float(np.median(timings) * 1e3)
