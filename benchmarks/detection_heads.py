"""Detection heads compared on the same data and budget: which assigner, at which stride.

Heads: the task's `extra.loss` (the assigner: "center" = FCOS centre sampling, "tal" = TOOD/YOLOv8's
task-aligned assigner; edgemtl.kinds.detection_loss) × `extra.stride` (4 or 8; edgemtl.model.detection) and
optionally `extra.tower_stride` (where the head's blocks run: center/4 is the default, blocks at 8;
center/4/4 the earlier default, blocks at 4).
Each trains a detection-only nano net on the same synthetic scenes (the obstacles task: boxes of cones,
crates and rocks), same epochs and seed, and is scored on held-out scenes by COCO mAP (pycocotools).
FLOPs: the whole net at the input size, and what the head adds to nano's scene + segmentation net. ms: the
eager PyTorch forward pass plus box selection at batch 1 on the CPU, median of 30. Prints a Markdown table
(the machine and its load first); progress goes to stderr.

    python benchmarks/detection_heads.py [--train-size 1500] [--epochs 10] [--seeds 0 1 2 3]
        [--heads center/4 center/4/4 tal/4 center/8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edgemtl.data.synthetic import OBSTACLES_TASK, make_dataset
from edgemtl.machine import describe_machine
from edgemtl.model import Preprocess, create_model, model_cost
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig, load_checkpoint, train
from edgemtl.train.losses import task_prediction
from edgemtl.train.validate import validate_model

SIZE = (128, 128)
HEADS = ("center/4", "center/4/4", "tal/4", "center/8")


def head_task(head: str):
    """ASSIGNER/STRIDE[/TOWER_STRIDE] → the obstacles task with that head (tower stride: the task's default)."""
    assigner, stride, *tower = head.split("/")
    extra = {"loss": assigner, "stride": int(stride)} | ({"tower_stride": int(tower[0])} if tower else {})
    return replace(OBSTACLES_TASK, extra=extra)


def latency_ms(model: torch.nn.Module, task) -> float:
    model.eval()
    frame = torch.zeros(1, 3, *SIZE)
    times = []
    with torch.no_grad():
        for _ in range(35):
            start = time.perf_counter()
            task_prediction(task, model(frame)[task.name])
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[5:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (data and weights)")
    parser.add_argument("--heads", nargs="+", default=list(HEADS), help="ASSIGNER/STRIDE[/TOWER_STRIDE]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shared CPU runs 1 fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base = model_cost(create_model("nano", NAVIGATION_TASKS), SIZE).flops
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{args.train_size} training scenes, {args.epochs} epochs, {args.test_size} held-out scenes at "
        f"{SIZE[0]}x{SIZE[1]}, seeds {' '.join(map(str, args.seeds))} (mean ± std over them); nano scene + "
        f"segmentation: {base / 1e9:.4f} GFLOPs\n"
    )
    scores: dict[str, list[dict[str, float]]] = {head: [] for head in args.heads}
    latency: dict[str, list[float]] = {head: [] for head in args.heads}
    for seed in args.seeds:
        splits = _splits(args, seed)
        config = TrainConfig(preset="nano", input_size=SIZE, epochs=args.epochs, seed=seed, device="cpu", plots=False)
        for head in args.heads:  # the heads of one seed in turn, so a load change hits all of them alike
            model, task = _trained(config, head, splits[:2])
            scores[head].append(validate_model(model, splits[2], Preprocess(config.mean, config.std))[task.name])
            latency[head].append(latency_ms(model, task))
            print(f"[{head}] seed {seed}: map {scores[head][-1]['map']:.3f}", file=sys.stderr, flush=True)
    print("| head | mAP@0.5:0.95 | mAP@0.5 | GFLOPs (detection-only net) | adds to nano | ms / frame |")
    print("|---|---|---|---|---|---|")
    for head in args.heads:
        task = head_task(head)
        flops = model_cost(create_model("nano", (task,)), SIZE).flops
        added = model_cost(create_model("nano", (*NAVIGATION_TASKS, task)), SIZE).flops - base
        maps = [_spread([run[key] for run in scores[head]]) for key in ("map", "map_50")]
        print(
            f"| {head} | {maps[0]} | {maps[1]} | {flops / 1e9:.4f} | {added / base:+.0%} "
            f"| {float(np.median(latency[head])):.2f} |"
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def _splits(args: argparse.Namespace, seed: int):
    """Training, validation and held-out scenes of one seed."""
    total = args.train_size + args.val_size + args.test_size
    scenes = make_dataset(total, SIZE, seed=seed, tasks=(OBSTACLES_TASK,))
    cut = (args.train_size, args.train_size + args.val_size)
    return scenes.subset(slice(0, cut[0])), scenes.subset(slice(*cut)), scenes.subset(slice(cut[1], None))


def _trained(config: TrainConfig, head: str, splits) -> tuple[torch.nn.Module, object]:
    task = head_task(head)
    with tempfile.TemporaryDirectory() as folder:
        run = train(
            config,
            (task,),
            *splits,
            Path(folder),
            progress=False,
            log=lambda line: print(f"[{head}] {line}", file=sys.stderr),
        )
        return load_checkpoint(run.best_checkpoint).build_model(), task


def _spread(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if len(values) == 1 else f"{np.mean(values):.3f} ± {np.std(values):.3f}"


if __name__ == "__main__":
    main()
