"""ONNX Runtime fp32 against PyTorch eager on the CPU at camera-shaped input sizes, with ORT's options.

At 128x128 ORT runs edgemtl's nets several times faster than eager; at camera sizes the gap narrows.
This measures by how much, and whether one of ORT's session options closes it: the graph optimization
level (`all` blocks float convolutions into NCHWc; `extended` does not), the memory pattern (planned
buffers, on by default), and the intra-op threads pinned to cores; none spins (see `ort_sessions`).
Every variant and eager take turns run by run (`time_interleaved`), so the ratios hold on a drifting
machine; medians. `--profile` adds where each side spends its time: ORT's profiler by op type against
PyTorch's by aten op.

Each side runs the whole exported computation: uint8 frame in, normalization, network, softmax/argmax out.
Random weights: speed does not depend on them.

    python benchmarks/ort_vs_eager.py [--presets nano small base] [--sizes camera 256x512 384x640]
                                      [--threads 2] [--runs 100] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from precision import op_profile
from speed import export_random

from edgemtl.deploy import ExportWrapper
from edgemtl.machine import describe_machine
from edgemtl.model import get_preset
from edgemtl.runtime.timing import median_ms, time_interleaved
from edgemtl.train import load_checkpoint


def ort_sessions(path: Path, threads: int) -> dict[str, ort.InferenceSession]:
    """ORT's defaults and each option changed alone."""

    def session(level: str = "all", mem_pattern: bool = True, pinned: bool = False) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        }[level]
        options.enable_mem_pattern = mem_pattern
        # Not spinning: a spinning session's idle threads busy-wait after each run and would slow whichever
        # call takes the next turn (measured: eager 20x slower beside four spinning sessions).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if pinned:  # the caller's thread is thread 0; each further intra-op thread gets the next core, 1-based
            options.add_session_config_entry(
                "session.intra_op_thread_affinities", ";".join(str(core + 1) for core in range(1, threads))
            )
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    variants = {
        "ORT defaults (all: NCHWc)": session(),
        "ORT defaults, a second session (the noise floor)": session(),
        "ORT extended (no NCHWc)": session(level="extended"),
        "ORT no memory pattern": session(mem_pattern=False),
    }
    if threads > 1:
        variants["ORT threads pinned"] = session(pinned=True)
    return variants


def eager_profile(wrapper: torch.nn.Module, tensor: torch.Tensor, runs: int = 50) -> dict[str, float]:
    """Microseconds per run in each aten op (self CPU time), from PyTorch's profiler."""
    with torch.inference_mode():
        for _ in range(5):
            wrapper(tensor)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            for _ in range(runs):
                wrapper(tensor)
    totals = collections.Counter()
    for event in profiler.key_averages():
        totals[event.key] += event.self_cpu_time_total / runs
    return dict(totals.most_common())


def top(profile: dict[str, float], count: int = 5) -> str:
    ops = ", ".join(f"{name} {us / 1e3:.2f}" for name, us in list(profile.items())[:count])
    return f"{ops} (of {sum(profile.values()) / 1e3:.2f})"


def measure(preset: str, size: tuple[int, int], threads: int, runs: int, folder: Path, profile: bool) -> list[str]:
    path, checkpoint_path = export_random(preset, folder, size=size)
    checkpoint = load_checkpoint(checkpoint_path)
    wrapper = ExportWrapper(checkpoint.build_model(), checkpoint.mean, checkpoint.std).eval()
    frame = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    tensor = torch.from_numpy(frame)
    sessions = ort_sessions(path, threads)

    def eager() -> None:
        with torch.inference_mode():
            wrapper(tensor)

    calls = {"PyTorch eager": eager}
    calls.update({name: (lambda s=s: s.run(None, {"frames": frame})) for name, s in sessions.items()})
    ms = {name: median_ms(t) for name, t in time_interleaved(calls, runs).items()}
    eager_ms = ms.pop("PyTorch eager")
    label = f"{preset} {size[0]}x{size[1]}"
    rows = [f"| {label} | PyTorch eager | {eager_ms:.2f} | 1.00 |"]
    rows += [f"| {label} | {name} | {value:.2f} | {eager_ms / value:.2f} |" for name, value in ms.items()]
    if profile:
        rows.append(f"|  | profile, ms per run: ORT | {top(op_profile(path, frame))} | |")
        rows.append(f"|  | profile, ms per run: eager | {top(eager_profile(wrapper, tensor))} | |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--sizes", nargs="+", default=["camera", "256x512", "384x640"], help="camera: the preset's own")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Machine: {describe_machine()}; torch {torch.__version__}, onnxruntime {ort.__version__}")
    load = os.getloadavg()[0]
    print(f"{args.threads} threads each side, batch 1, medians of {args.runs} in turns; load {load:.1f}\n")
    print("| model | runs on | ms | speed-up over eager |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as name:
        for preset in args.presets:
            for text in args.sizes:
                size = get_preset(preset).input_size if text == "camera" else tuple(map(int, text.split("x")))
                for row in measure(preset, size, args.threads, args.runs, Path(name), args.profile):
                    print(row, flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
