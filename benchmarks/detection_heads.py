"""Detection heads compared on the same data and budget: which assigner, at which stride.

Heads: the task's `extra.loss` (the assigner: "center" = FCOS centre sampling, "tal" = TOOD/YOLOv8's
task-aligned assigner; edgemtl.kinds.detection_loss) × `extra.stride` (4 or 8; edgemtl.model.detection).
Each trains a detection-only nano net on the same synthetic scenes (the obstacles task: boxes of cones,
crates and rocks), same epochs and seed, and is scored on held-out scenes by COCO mAP (pycocotools).
FLOPs: the whole net at the input size, and what the head adds to nano's scene + segmentation net. ms: the
eager PyTorch forward pass plus box selection at batch 1 on the CPU, median of 30. Prints a Markdown table
(the machine and its load first); progress goes to stderr.

    python benchmarks/detection_heads.py [--train-size 1500] [--epochs 10] [--heads center/4 tal/4 center/8]
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heads", nargs="+", default=list(HEADS), help="ASSIGNER/STRIDE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shared CPU runs 1 fastest)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tasks = (OBSTACLES_TASK,)
    total = args.train_size + args.val_size + args.test_size
    scenes = make_dataset(total, SIZE, seed=args.seed, tasks=tasks)
    cut = (args.train_size, args.train_size + args.val_size)
    train_set, val_set, test_set = (
        scenes.subset(slice(0, cut[0])),
        scenes.subset(slice(*cut)),
        scenes.subset(slice(cut[1], None)),
    )
    base = model_cost(create_model("nano", NAVIGATION_TASKS), SIZE).flops
    config = TrainConfig(preset="nano", input_size=SIZE, epochs=args.epochs, seed=args.seed, device="cpu", plots=False)
    print(f"machine: {describe_machine()}; load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{args.train_size} training scenes, {args.epochs} epochs, {args.test_size} held-out scenes at "
        f"{SIZE[0]}x{SIZE[1]}; nano scene + segmentation: {base / 1e9:.4f} GFLOPs\n"
    )
    print("| head | mAP@0.5:0.95 | mAP@0.5 | GFLOPs (detection-only net) | adds to nano | ms / frame | train s |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for head in args.heads:
        task = head_task(head)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            run = train(
                config,
                (task,),
                train_set,
                val_set,
                Path(folder),
                progress=False,
                log=lambda line, head=head: print(f"[{head}] {line}", file=sys.stderr),
            )
            model = load_checkpoint(run.best_checkpoint).build_model()
        seconds = time.perf_counter() - start
        scores = validate_model(model, test_set, Preprocess(config.mean, config.std))[task.name]
        flops = model_cost(create_model("nano", (task,)), SIZE).flops
        added = model_cost(create_model("nano", (*NAVIGATION_TASKS, task)), SIZE).flops - base
        print(
            f"| {head} | {scores['map']:.3f} | {scores['map_50']:.3f} | {flops / 1e9:.4f} | {added / base:+.0%} "
            f"| {latency_ms(model, task):.2f} | {seconds:.0f} |",
            flush=True,
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
