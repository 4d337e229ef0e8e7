"""ONNX Runtime vs PyTorch eager, per preset, on the same frames and the same graph (CPU).

Both sides run the whole exported computation: uint8 frame in, normalization, network, softmax and
argmax out. Prints a Markdown table for the README.

    python benchmarks/speed.py [--presets nano small base] [--runs 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from edgemtl.data import ArrayDataset
from edgemtl.deploy import ExportOptions, ExportWrapper, export_onnx
from edgemtl.machine import describe_machine
from edgemtl.model import get_preset, model_cost
from edgemtl.runtime import Engine, render_overlay
from edgemtl.runtime.timing import median_ms, time_calls
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import Checkpoint, TrainConfig, load_checkpoint, random_checkpoint, save_checkpoint, train

Key = TypeVar("Key")  # what names a call: a row's label, or a (model, device) pair


def timed_in_turns(calls: dict[Key, Callable[[], object]], repeats: int, runs: int) -> dict[Key, float]:
    """Median ms of each call: `repeats` rounds, in each a block of `runs` calls per name (the order rotating
    round by round), the block's median kept, then the median of the blocks. Blocks, not call-by-call turns:
    ORT's idle threads spin after a run and would slow whichever runtime came next."""
    blocks: dict[Key, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            blocks[name].append(median_ms(time_calls(calls[name], runs, warmup=3)))
    return {name: float(np.median(values)) for name, values in blocks.items()}


def percentiles(timings: np.ndarray) -> tuple[float, float]:
    p50, p99 = np.percentile(timings, [50, 99]) * 1e3
    return float(p50), float(p99)


def export_random(
    name: str, folder: Path, options: ExportOptions | None = None, size: tuple[int, int] | None = None
) -> tuple[Path, Path]:
    """A random-weight model of the preset at `size` (default: the preset's), exported as `edgemtl export`
    does (with `options`, e.g. a frame size), and its checkpoint file."""
    checkpoint = random_checkpoint(name, NAVIGATION_TASKS, size)
    path = export_onnx(checkpoint, folder / f"{name}.onnx", options or ExportOptions(), overwrite=True).path
    return path, save_checkpoint(checkpoint, folder / f"{name}.pt")


def trained_nano(
    checkpoint: Path | None,
    folder: Path,
    epochs: int,
    datasets: Callable[[], tuple[ArrayDataset, ArrayDataset]],
    **settings: Any,
) -> Checkpoint:
    """`checkpoint` loaded, or else nano trained quietly for `epochs` on datasets()'s (training, validation) in
    folder/run, with TrainConfig `settings`: the trained model a benchmark's accuracy rows score."""
    if checkpoint:
        return load_checkpoint(checkpoint)
    data, val = datasets()
    config = TrainConfig(preset="nano", epochs=epochs, batch_size=32, seed=0, **settings)
    run = train(config, NAVIGATION_TASKS, data, val, folder / "run", progress=False, log=lambda _: None)
    return load_checkpoint(run.best_checkpoint)


def bench_preset(name: str, runs: int, threads: int, folder: Path) -> dict:
    size = get_preset(name).input_size
    path, checkpoint_path = export_random(name, folder)
    checkpoint = load_checkpoint(checkpoint_path)
    model = checkpoint.build_model()
    frame = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)

    wrapper = ExportWrapper(model, checkpoint.mean, checkpoint.std).eval()
    torch.set_num_threads(threads)
    tensor = torch.from_numpy(frame)
    with torch.inference_mode():
        torch_p50, torch_p99 = percentiles(time_calls(lambda: wrapper(tensor), runs))

    engine = Engine(path, device="cpu", threads=threads)
    ort_p50, ort_p99 = percentiles(time_calls(lambda: engine.run(frame), runs))
    image = frame[0]
    e2e_p50, e2e_p99 = percentiles(time_calls(lambda: render_overlay(image, engine.predict(image)), runs))
    cost = model_cost(model, size)
    return {
        "preset": name,
        "input": f"{size[0]}x{size[1]}",
        "params (M)": f"{cost.parameters / 1e6:.3f}",
        "GFLOPs": f"{cost.flops / 1e9:.3f}",
        "PyTorch eager p50 / p99 (ms)": f"{torch_p50:.2f} / {torch_p99:.2f}",
        "ORT CPU p50 / p99 (ms)": f"{ort_p50:.2f} / {ort_p99:.2f}",
        "ORT speed-up (p50)": f"{torch_p50 / ort_p50:.2f}x",
        "predict + overlay p50 / p99 (ms)": f"{e2e_p50:.2f} / {e2e_p99:.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = [bench_preset(name, args.runs, args.threads, Path(folder)) for name in args.presets]
    print(
        f"Machine: {describe_machine()}; {torch.get_num_threads()} threads, "
        f"CPUExecutionProvider, no I/O binding, no CUDA graphs; "
        f"batch 1, {args.runs} runs after 10 warm-up runs"
    )
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")


if __name__ == "__main__":
    main()
