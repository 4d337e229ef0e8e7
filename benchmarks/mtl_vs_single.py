"""The multi-task nano net against one single-task nano net per task, and against itself under each weighting.

Every model gets the same preset, synthetic scenes, epochs and seed; metrics are the last epoch's on the
held-out scenes (the same budget for all, no best-epoch pick). Costs: parameters and FLOPs of the network
(PyTorch's FlopCounterMode), and ONNX Runtime CPU latency of the exported graph (uint8 frame in, results
out) at batch 1 on 2 threads, the models timed interleaved run by run so machine load affects them alike.
Prints two Markdown tables for the README; training progress goes to stderr.

    python benchmarks/mtl_vs_single.py [--train-size 3000] [--val-size 400] [--epochs 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from precision import interleaved_latency_ms

from edgemtl.data import ArrayDataset
from edgemtl.data.synthetic import make_dataset
from edgemtl.deploy import export_onnx
from edgemtl.machine import describe_machine
from edgemtl.metrics import higher_is_better, primary_metric
from edgemtl.model import get_preset, model_cost
from edgemtl.runtime import Engine
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from edgemtl.train import Checkpoint, TrainConfig, load_checkpoint, train
from edgemtl.train.weighting import WEIGHTINGS

PRESET = "nano"
THREADS = 2


@dataclass
class Run:
    name: str
    tasks: tuple[TaskSpec, ...]
    metrics: dict[str, dict[str, float]]  # the last epoch's validation metrics
    weights: dict[str, float]  # the task weights of the last epoch
    checkpoint: Checkpoint


def train_run(
    name: str, tasks: tuple[TaskSpec, ...], weighting: str, args: argparse.Namespace, data: ArrayDataset, folder: Path
) -> Run:
    config = TrainConfig(preset=PRESET, epochs=args.epochs, seed=args.seed, weighting=weighting)
    train_data, val_data = data.subset(slice(0, args.train_size)), data.subset(slice(args.train_size, None))
    result = train(
        config,
        tasks,
        train_data,
        val_data,
        folder / name,
        progress=False,
        log=lambda line: print(f"[{name}] {line}", file=sys.stderr),
    )
    last = result.history[-1]
    return Run(name, tasks, last["val"], last["task_weights"], load_checkpoint(result.last_checkpoint))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def score(task: TaskSpec, run: Run) -> float:
    return run.metrics[task.name][primary_metric(task)]


def score_text(task: TaskSpec, value: float) -> str:
    """Fractions (accuracy, mIoU) as percentages, so a difference reads in points; MAE as it is."""
    return f"{100 * value:.1f}" if higher_is_better(task) else f"{value:.3f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=positive, default=3000)
    parser.add_argument("--val-size", type=positive, default=400)
    parser.add_argument("--epochs", type=positive, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=positive, default=300, help="timed runs per model (after 10 warm-up runs)")
    args = parser.parse_args()

    tasks = NAVIGATION_TASKS
    size = get_preset(PRESET).input_size
    data = make_dataset(args.train_size + args.val_size, size, seed=args.seed)  # scene i depends on (seed, i) only
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        weighted = {name: train_run(f"multi-task, {name}", tasks, name, args, data, folder) for name in WEIGHTINGS}
        multi = weighted["fixed"]
        singles = [train_run(f"single-task {t.name}", (t,), "fixed", args, data, folder) for t in tasks]
        compared = [multi, *singles]
        engines = {
            run.name: Engine(export_onnx(run.checkpoint, folder / f"{i}.onnx").path, device="cpu", threads=THREADS)
            for i, run in enumerate(compared)
        }
        latency = interleaved_latency_ms(engines, data.images[:1], args.runs)
    costs = {run.name: model_cost(run.checkpoint.build_model(), size) for run in compared}

    def cost_cells(parameters: float, flops: float, milliseconds: float) -> list[str]:
        return [f"{parameters / 1e6:.3f}", f"{flops / 1e9:.3f}", f"{milliseconds:.2f}"]

    header = ["model", *(f"{t.name} {primary_metric(t)}" for t in tasks), "params (M)", "GFLOPs", "ORT CPU p50 (ms)"]
    rows = [
        [
            run.name,
            *(score_text(t, score(t, run)) if t in run.tasks else "—" for t in tasks),
            *cost_cells(costs[run.name].parameters, costs[run.name].flops, latency[run.name]),
        ]
        for run in compared
    ]
    sums = [sum(costs[r.name].parameters for r in singles), sum(costs[r.name].flops for r in singles)]
    sums.append(sum(latency[r.name] for r in singles))
    rows.append(
        ["sum of single-task nets", *(score_text(t, score(t, s)) for t, s in zip(tasks, singles)), *cost_cells(*sums)]
    )
    own = [costs[multi.name].parameters, costs[multi.name].flops, latency[multi.name]]
    deltas = [
        f"{100 * (score(t, multi) - score(t, s)):+.1f} pts"
        if higher_is_better(t)
        else f"{score(t, multi) - score(t, s):+.3f}"
        for t, s in zip(tasks, singles)
    ]
    rows.append(["multi-task vs sum", *deltas, *(f"{mine / total:.0%}" for mine, total in zip(own, sums))])

    weighting_rows = [
        [
            name,
            *(score_text(t, score(t, run)) for t in tasks),
            ", ".join(f"{k} {v:.2f}" for k, v in run.weights.items()),
        ]
        for name, run in weighted.items()
    ]
    print(f"Machine: {describe_machine()}")
    print(
        f"{PRESET} preset at {size[0]}x{size[1]}; {args.train_size} synthetic training scenes, epochs {args.epochs}, "
        f"seed {args.seed}; metrics on {args.val_size} held-out scenes after the last epoch; latency: onnxruntime "
        f"CPUExecutionProvider, {THREADS} threads, batch 1, median of {args.runs} interleaved runs"
    )
    print()
    print("\n".join(table(header, rows)))
    print()
    print("\n".join(table(["weighting", *header[1 : 1 + len(tasks)], "last epoch's task weights"], weighting_rows)))


if __name__ == "__main__":
    main()
