"""fp32 vs fp16 vs int8: accuracy and speed of each preset, side by side, as a Markdown table.

Each preset is trained on synthetic scenes with the same budget (or given as checkpoints), exported at
every precision through `export_onnx` (int8 calibrated on training frames, MinMax), scored on held-out
scenes through the runtime, and timed with the three files interleaved run by run, so machine load
affects them alike. An op-by-op profile (ONNX Runtime's profiler) shows where the time goes.

    python benchmarks/precision.py [--presets nano small base] [--epochs 8] [--train-size 2000]
    python benchmarks/precision.py --checkpoints runs/demo/train/best.pt --profile
    python benchmarks/precision.py --device cuda --batch 1 32   # on a GPU (onnxruntime-gpu)
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime

from edgemtl.data import open_dataset
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.machine import describe_machine
from edgemtl.metrics import primary_metric
from edgemtl.runtime import Engine
from edgemtl.runtime.scoring import score_engine
from edgemtl.runtime.timing import median_ms, time_interleaved
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig, load_checkpoint, train

PRECISIONS = ("fp32", "fp16", "int8")
SIZE = (128, 128)  # one input size for every preset, so the budget is the same


def checkpoints_for(args: argparse.Namespace, folder: Path) -> list[Path]:
    if args.checkpoints:
        return [Path(p) for p in args.checkpoints]
    train_data = open_dataset("synthetic", "train", size=SIZE, count=args.train_size)
    val_data = open_dataset("synthetic", "val", size=SIZE, count=300)
    paths = []
    for preset in args.presets:
        config = TrainConfig(preset=preset, input_size=SIZE, epochs=args.epochs, device="auto")
        result = train(config, NAVIGATION_TASKS, train_data, val_data, folder / preset, progress=False, log=print)
        paths.append(result.best_checkpoint)
    return paths


def interleaved_latency_ms(engines: dict[str, Engine], frames: np.ndarray, runs: int) -> dict[str, float]:
    calls = {name: (lambda engine=engine: engine.run(frames)) for name, engine in engines.items()}
    return {name: median_ms(timings) for name, timings in time_interleaved(calls, runs).items()}


def op_profile(path: Path, frame: np.ndarray, runs: int = 200) -> dict[str, float]:
    """Microseconds per run spent in each op type, from ONNX Runtime's own profiler: the median of each
    node over the runs, summed by op type (a mean lets the first runs and load spikes dominate)."""
    options = onnxruntime.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {"frames": frame})
    events = json.loads(Path(session.end_profiling()).read_text())
    durations: dict[str, list[float]] = collections.defaultdict(list)
    op_types = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            durations[event["name"]].append(event["dur"])
            op_types[event["name"]] = event["args"]["op_name"]
    totals: collections.Counter[str] = collections.Counter()
    for node, values in durations.items():
        totals[op_types[node]] += float(np.median(values))
    return dict(totals.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--checkpoints", nargs="+", help="use these instead of training")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=600)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print an op-by-op profile of each precision (CPU)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the exported files run")
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes timed")
    args = parser.parse_args()
    if max(args.batch) > args.test_size:
        parser.error(f"--batch {max(args.batch)} needs at least as many --test-size frames")

    rows = []
    profiles = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for checkpoint_path in checkpoints_for(args, folder):
            checkpoint = load_checkpoint(checkpoint_path)
            tasks = checkpoint.tasks  # the table's columns; every checkpoint must share them
            test = open_dataset("synthetic", "test", size=checkpoint.input_size, count=args.test_size)
            calibration = open_dataset("synthetic", "train", size=checkpoint.input_size, count=128).images
            engines, sizes = {}, {}
            for precision in PRECISIONS:
                path = folder / f"{checkpoint.preset}.{precision}.onnx"
                options = ExportOptions(precision=precision, allow_degraded=True)
                export_onnx(checkpoint, path, options, calibration_frames=calibration, overwrite=True)
                engines[precision] = Engine(path, device=args.device, threads=2)
                sizes[precision] = path.stat().st_size
            latency = {batch: interleaved_latency_ms(engines, test.images[:batch], args.runs) for batch in args.batch}
            for precision, engine in engines.items():
                metrics = score_engine(engine, test.images, test.targets)
                scores = [f"{metrics[t.name][primary_metric(t)]:.4f}" for t in checkpoint.tasks]
                speeds = [
                    f"{by_precision[precision]:.2f} ({by_precision['fp32'] / by_precision[precision]:.2f}x)"
                    for by_precision in latency.values()
                ]
                rows.append([checkpoint.preset, precision, *scores, f"{sizes[precision] / 1e6:.2f}", *speeds])
                if args.profile:
                    profiles.append((checkpoint.preset, precision, op_profile(engine.path, test.images[:1])))

    timed = [f"ms at batch {batch} (vs fp32)" for batch in args.batch]
    header = ["preset", "precision", *(f"{t.name} {primary_metric(t)}" for t in tasks), "MB", *timed]
    print(
        f"Machine: {describe_machine()}; {engine.providers[0]}{', 2 threads' if args.device == 'cpu' else ''}; "
        f"{args.test_size} held-out scenes at "
        f"{checkpoint.input_size[0]}x{checkpoint.input_size[1]}; median of {args.runs} interleaved runs"
    )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for preset, precision, profile in profiles:
        top = ", ".join(f"{op} {us:.0f}" for op, us in list(profile.items())[:8])
        print(f"\n{preset} {precision}: {sum(profile.values()):.0f} µs of kernels per run — {top}")


if __name__ == "__main__":
    main()
