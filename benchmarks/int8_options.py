"""int8 against fp32 at the presets' camera-shaped input sizes, with each quantization setting ONNX Runtime offers.

Each preset is exported with random weights at its default input size (nano 96x160, small 192x320, base
256x448), then quantized from the same fp32 file in each way (`edgemtl.deploy.precision.Int8Settings`),
calibrated on the same synthetic scenes. Every file runs in its own CPU session on one frame, the calls
interleaved run by run so that load falls on all of them alike; medians are printed with the ratio to fp32
(above 1: faster than fp32). An op-by-op profile (ONNX Runtime's profiler) of fp32 and of edgemtl's int8
says where the time goes. Random weights make the speed real and the accuracy meaningless: accuracy of the
default int8 is in docs/benchmarks.md ("Precision").

    python benchmarks/int8_options.py [--presets nano small base] [--runs 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import onnxruntime
from precision import op_profile
from speed import export_random

from edgemtl.data.synthetic import make_dataset
from edgemtl.deploy.precision import Int8Settings, quantize_int8
from edgemtl.machine import describe_machine
from edgemtl.model import get_preset
from edgemtl.runtime.timing import median_ms, time_interleaved

DEFAULT = Int8Settings()
VARIANTS = {
    "int8 (edgemtl: QDQ, u8s8, per-channel, < 32 channels float)": DEFAULT,
    "int8 QOperator": replace(DEFAULT, format="QOperator"),
    "int8 u8u8": replace(DEFAULT, weights="uint8"),
    "int8 per-tensor weights": replace(DEFAULT, per_channel=False),
    "int8 every layer (none left float)": replace(DEFAULT, min_channels=0),
    "int8 first and last layers float too": replace(DEFAULT, float_ends=True),
}
NO_LAYOUT = " (layout optimizations off: no NCHWc / NHWC)"


def session(path: Path, threads: int, layout: bool = True) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.graph_optimization_level = (
        onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        if layout
        else onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def preset_rows(preset: str, folder: Path, runs: int, threads: int) -> tuple[list[str], dict[str, dict[str, float]]]:
    size = get_preset(preset).input_size
    fp32, _ = export_random(preset, folder)
    calibration = make_dataset(32, size, seed=1).images
    files = {"fp32": fp32}
    for name, settings in VARIANTS.items():
        target = folder / f"{preset}-{len(files)}.onnx"
        quantize_int8(fp32, target, calibration, "frames", settings=settings)
        files[name] = target
    sessions = {name: session(path, threads) for name, path in files.items()}
    edgemtl_int8 = next(iter(VARIANTS))
    sessions["fp32" + NO_LAYOUT] = session(fp32, threads, layout=False)
    sessions[edgemtl_int8 + NO_LAYOUT] = session(files[edgemtl_int8], threads, layout=False)
    frame = make_dataset(1, size, seed=2).images[:1]
    calls = {name: (lambda s=s: s.run(None, {"frames": frame})) for name, s in sessions.items()}
    ms = {name: median_ms(times) for name, times in time_interleaved(calls, runs).items()}
    rows = [
        f"| {preset} {size[0]}x{size[1]} | {name} | {ms[name]:.2f} | {ms['fp32'] / ms[name]:.2f}x |"
        for name in sessions
    ]
    profiles = {"fp32": op_profile(fp32, frame), "int8": op_profile(files[edgemtl_int8], frame)}
    return rows, profiles


def profile_lines(preset: str, profiles: dict[str, dict[str, float]]) -> list[str]:
    """The op types that take the most time in either file, µs per run, side by side."""
    fp32, int8 = profiles["fp32"], profiles["int8"]
    ops = sorted(set(fp32) | set(int8), key=lambda op: -max(fp32.get(op, 0.0), int8.get(op, 0.0)))[:10]
    lines = [
        f"\n{preset}: µs per run by op type (medians per node, summed)",
        "",
        "| op | fp32 | int8 |",
        "|---|---|---|",
    ]
    lines += [f"| {op} | {fp32.get(op, 0.0):.0f} | {int8.get(op, 0.0):.0f} |" for op in ops]
    lines.append(f"| **all** | {sum(fp32.values()):.0f} | {sum(int8.values()):.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="1: the camera pipeline's setting")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows, profiles = [], []
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.presets:
            preset_table, preset_profiles = preset_rows(preset, Path(folder), args.runs, args.threads)
            rows += preset_table
            profiles += profile_lines(preset, preset_profiles)
    print(f"Machine: {describe_machine()}")
    print(f"load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; threads {args.threads}")
    print()
    print("| preset, input | file | ms per frame (median) | fp32 / this |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print("\n".join(profiles))


if __name__ == "__main__":
    main()
