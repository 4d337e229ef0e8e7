"""The multi-task nano net, under each task weighting, against one single-task nano net per task: 3 seeds,
mean ± standard deviation of each task's headline metric, and each network's FLOPs.

Every model gets the same preset, input size, synthetic scenes (per seed), epochs and seed; metrics are
the last epoch's on the held-out scenes (the same budget for all, no best-epoch pick). FLOPs: PyTorch's
FlopCounterMode on one frame (`edgemtl.model.model_cost`). Sized to finish in about 25 minutes on a
loaded 2-core machine (small frames, few scenes and epochs): the comparison is of like with like, not of
the demo's numbers. Prints Markdown tables; training progress goes to stderr.

    python benchmarks/mtl_vs_single.py [--size 64] [--train-size 800] [--epochs 8] [--seeds 0 1 2] [--objects]

`--objects` adds the synthetic `obstacles` detection task (issue 22: the three-task net against a
detection-only one on mAP@0.5:0.95, at <= 85 % of the single-task nets' summed FLOPs); use --size 128 or more,
where the obstacles are boxes a detector can find.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loss_runs import load_text, table

from edgemtl.data import ArrayDataset
from edgemtl.data.synthetic import OBSTACLES_TASK, make_dataset
from edgemtl.machine import describe_machine
from edgemtl.metrics import higher_is_better, primary_metric
from edgemtl.model import create_model, model_cost
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from edgemtl.train import TrainConfig, train
from edgemtl.train.weighting import WEIGHTINGS

PRESET = "nano"


def last_epoch_scores(
    tasks: tuple[TaskSpec, ...], weighting: str, seed: int, args: argparse.Namespace, folder: Path, data: ArrayDataset
) -> dict[str, float]:
    """Each task's headline metric on the held-out scenes after the last epoch of one training run."""
    size = (args.size, args.size)
    config = TrainConfig(
        preset=PRESET, input_size=size, epochs=args.epochs, seed=seed, weighting=weighting, device="cpu", plots=False
    )
    name = f"{'+'.join(t.name for t in tasks)} {weighting} seed {seed}"
    result = train(
        config,
        tasks,
        data.subset(slice(0, args.train_size)),
        data.subset(slice(args.train_size, None)),
        folder / name.replace(" ", "_"),
        progress=False,
        log=lambda line: print(f"[{name}] {line}", file=sys.stderr),
    )
    return {t.name: result.history[-1]["val"][t.name][primary_metric(t)] for t in tasks}


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def shown(task: TaskSpec, values: list[float]) -> str:
    """mean ± std; fractions (accuracy, mIoU) as percentages, so differences read in points."""
    mean, std = spread(values)
    scale = 100 if higher_is_better(task) else 1
    return f"{scale * mean:.1f} ± {scale * std:.1f}" if scale == 100 else f"{mean:.3f} ± {std:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="square input size (a multiple of 32)")
    parser.add_argument("--train-size", type=int, default=800)
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weightings", nargs="+", default=list(WEIGHTINGS), choices=list(WEIGHTINGS))
    parser.add_argument("--objects", action="store_true", help="add the obstacles detection task")
    args = parser.parse_args()

    tasks = (*NAVIGATION_TASKS, OBSTACLES_TASK) if args.objects else NAVIGATION_TASKS
    started, load_before = time.perf_counter(), load_text()
    multi: dict[str, list[dict[str, float]]] = {w: [] for w in args.weightings}
    single: dict[str, list[float]] = {t.name: [] for t in tasks}
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:  # seed by seed, so load drifts affect every model alike
            size = (args.size, args.size)
            data = make_dataset(args.train_size + args.val_size, size, seed=seed, tasks=tasks)  # scene i: (seed, i)
            for weighting in args.weightings:
                multi[weighting].append(last_epoch_scores(tasks, weighting, seed, args, Path(folder), data))
            for task in tasks:
                scores = last_epoch_scores((task,), "fixed", seed, args, Path(folder), data)
                single[task.name].append(scores[task.name])
    size = (args.size, args.size)
    flops = {"multi": model_cost(create_model(PRESET, tasks), size).flops}
    flops |= {t.name: model_cost(create_model(PRESET, (t,)), size).flops for t in tasks}
    summed = sum(flops[t.name] for t in tasks)

    header = ["model", *(f"{t.name} {primary_metric(t)}" for t in tasks), "MFLOPs", "share of summed singles"]
    rows = [
        [
            f"multi-task, {w}",
            *(shown(t, [run[t.name] for run in runs]) for t in tasks),
            f"{flops['multi'] / 1e6:.1f}",
            f"{flops['multi'] / summed:.0%}",
        ]
        for w, runs in multi.items()
    ]
    rows += [
        [
            f"single-task {task.name}",
            *(shown(t, single[t.name]) if t is task else "—" for t in tasks),
            f"{flops[task.name] / 1e6:.1f}",
            f"{flops[task.name] / summed:.0%}",
        ]
        for task in tasks
    ]
    verdicts = []
    for weighting, runs in multi.items():
        cells = []
        for task in tasks:
            mine, _ = spread([run[task.name] for run in runs])
            theirs, std = spread(single[task.name])
            gap = mine - theirs if higher_is_better(task) else theirs - mine  # > 0: the multi-task net is better
            shown_gap = f"{100 * gap:+.1f} pts" if higher_is_better(task) else f"{gap:+.3f}"
            cells.append(f"{shown_gap} ({'within' if gap >= -std else 'outside'} 1 std)")
        verdicts.append([weighting, *cells])
    print(f"Machine: {describe_machine()}; {load_before} at the start, {load_text()} at the end")
    print(
        f"{PRESET} at {size[0]}x{size[1]}; {args.train_size} synthetic training scenes per seed, {args.epochs} epochs, "
        f"seeds {', '.join(map(str, args.seeds))}; metrics on {args.val_size} held-out scenes after the last epoch "
        f"(mean ± std over the seeds); {time.perf_counter() - started:.0f} s in all"
    )
    print()
    print(table(header, rows))
    print()
    print(table(["weighting", *(f"{t.name}: multi-task − single-task" for t in tasks)], verdicts))


if __name__ == "__main__":
    main()
