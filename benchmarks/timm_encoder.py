"""A timm encoder beside the nano preset on the demo's data and budget, both from random initialisation.

Same synthetic scenes, input size, epochs, batch, learning rate and seed as `edgemtl demo`; metrics on the
held-out test scenes through the exported file in ONNX Runtime (the Engine's path); FLOPs by PyTorch's
FlopCounterMode; latency of the .onnx file at batch 1 on 2 threads, the models timed interleaved run by
run so machine load hits them alike. Without pretraining a timm backbone is not expected to win: it is
sized for ImageNet and gets the same few minutes as nano. Needs timm (pip install edgemtl[timm]).

    python benchmarks/timm_encoder.py [--encoder timm:regnetx_002] [--epochs 12] [--train-size 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from precision import interleaved_latency_ms

from edgemtl.commands.demo import DemoConfig
from edgemtl.data import open_dataset
from edgemtl.data.splits import SYNTHETIC
from edgemtl.deploy import export_onnx
from edgemtl.deploy.onnx_export import model_description
from edgemtl.machine import describe_machine
from edgemtl.model import model_cost
from edgemtl.runtime import Engine
from edgemtl.runtime.scoring import score_engine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig, load_checkpoint, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random initialisation: nothing is downloaded
THREADS = 2


def main() -> None:
    demo = DemoConfig(objects=False)  # scene + segmentation, as NAVIGATION_TASKS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", action="append", help="timm:<name>, repeatable (default timm:regnetx_002)")
    parser.add_argument("--epochs", type=int, default=demo.recipe.epochs)
    parser.add_argument("--train-size", type=int, default=demo.train_size)
    parser.add_argument("--val-size", type=int, default=demo.val_size)
    parser.add_argument("--test-size", type=int, default=demo.test_size)
    parser.add_argument("--runs", type=int, default=300, help="timed runs per model")
    args = parser.parse_args()
    encoders = ["", *(args.encoder or ["timm:regnetx_002"])]
    size = demo.recipe.input_size
    data = {
        split: open_dataset(SYNTHETIC, split, size=size, count=count, seed=demo.seed)
        for split, count in (("train", args.train_size), ("val", args.val_size), ("test", args.test_size))
    }
    loads, rows, engines = [os.getloadavg()[0]], {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for encoder in encoders:
            name = model_description("nano", encoder)
            config = TrainConfig(
                preset="nano", encoder=encoder, input_size=size, epochs=args.epochs, seed=demo.seed, plots=False
            )
            start = time.perf_counter()
            result = train(
                config,
                NAVIGATION_TASKS,
                data["train"],
                data["val"],
                Path(folder) / str(len(rows)),
                progress=False,
                log=lambda line, name=name: print(f"[{name}] {line}", file=sys.stderr),
            )
            minutes = (time.perf_counter() - start) / 60
            checkpoint = load_checkpoint(result.best_checkpoint)
            path = export_onnx(checkpoint, Path(folder) / f"{len(rows)}.onnx", verify_data=data["val"]).path
            engines[name] = Engine(path, device="cpu", threads=THREADS)
            metrics = score_engine(engines[name], data["test"].images, data["test"].targets)
            cost = model_cost(checkpoint.build_model(), size)
            rows[name] = (metrics, cost, minutes)
            loads.append(os.getloadavg()[0])
        latency = interleaved_latency_ms(engines, data["test"].images[:1], args.runs)
    loads.append(os.getloadavg()[0])

    print(
        f"Machine: {describe_machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}"
    )
    print(
        f"Demo data and budget: {args.train_size} + {args.val_size} scenes, {args.epochs} epochs, "
        f"{size[0]}x{size[1]}, random initialisation; metrics on {args.test_size} held-out scenes (ONNX Runtime)\n"
    )
    columns = ["model", "scene accuracy", "segmentation mIoU", "lane IoU", "params (M)", "GFLOPs"]
    print("| " + " | ".join([*columns, "ORT CPU p50 (ms)", "train (min)"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (metrics, cost, minutes) in rows.items():
        scene, segmentation = metrics["scene"], metrics["segmentation"]
        lane = segmentation.get("iou_lane", float("nan"))
        print(
            f"| {name} | {scene['accuracy']:.3f} | {segmentation['miou']:.3f} | {lane:.3f} "
            f"| {cost.parameters / 1e6:.3f} | {cost.flops / 1e9:.3f} | {latency[name]:.2f} | {minutes:.1f} |"
        )


if __name__ == "__main__":
    main()
