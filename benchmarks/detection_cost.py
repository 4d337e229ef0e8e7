"""What a detection task costs at run time: issue 22's cost target (≤ 30 % more FLOPs for nano, and on the
CPU at 384x640 frame to boxes + masks in ≤ 1.2× the time of the same model without detection).

Random-weight nano exports at the same size (speed does not depend on the weights): scene + segmentation,
and the same + the synthetic `obstacles` detection task (boxes chosen inside the graph) with the default head
(output stride 4, its blocks at stride 8), the earlier one (blocks at stride 4: `tower_stride = 4`) and a
stride-8 head. Each is
timed through `Engine.predict` (uint8 frame in → labels, masks and final boxes out, as a camera gets them) on
each device asked for, in blocks taken in turns with the order rotating, median of the blocks.

    python benchmarks/detection_cost.py [--size 384x640] [--devices cpu auto] [--repeats 7] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from speed import timed_in_turns

from edgemtl.data.synthetic import OBSTACLES_TASK
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.machine import describe_machine
from edgemtl.model import create_model, model_cost
from edgemtl.runtime import Engine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import random_checkpoint


def obstacles(**extra: int):
    return replace(OBSTACLES_TASK, extra={**OBSTACLES_TASK.extra, **extra})


MODELS = {
    "scene + segmentation": NAVIGATION_TASKS,
    "+ obstacles (stride 4, tower at 8: the default)": (*NAVIGATION_TASKS, OBSTACLES_TASK),
    "+ obstacles (stride 4, tower at 4: the earlier default)": (*NAVIGATION_TASKS, obstacles(tower_stride=4)),
    "+ obstacles (stride 8)": (*NAVIGATION_TASKS, obstacles(stride=8)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="384x640", help="HxW of the model's input")
    parser.add_argument("--devices", nargs="+", default=["cpu", "auto"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    print(f"Machine: {describe_machine()}; load average at start {os.getloadavg()[0]:.1f}\n")
    flops = {name: model_cost(create_model("nano", tasks), size).flops for name, tasks in MODELS.items()}
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as name:
        files = {
            model: export_onnx(random_checkpoint("nano", tasks, size), Path(name) / f"{i}.onnx", ExportOptions()).path
            for i, (model, tasks) in enumerate(MODELS.items())
        }
        engines = {(model, device): Engine(path, device) for model, path in files.items() for device in args.devices}
        calls = {key: partial(engine.predict, frame) for key, engine in engines.items()}
        ms = timed_in_turns(calls, args.repeats, args.runs)
    base_flops = flops["scene + segmentation"]
    print(f"nano at {size[0]}x{size[1]}, `Engine.predict` on one frame, median of {args.repeats} x {args.runs} calls\n")
    print("| model | GFLOPs | FLOPs × | device | served by | ms | time × |\n|---|---|---|---|---|---|---|")
    for device in args.devices:
        base_ms = ms[("scene + segmentation", device)]
        for model in MODELS:
            model_ms = ms[(model, device)]
            print(
                f"| {model} | {flops[model] / 1e9:.3f} | {flops[model] / base_flops:.2f} | {device} "
                f"| {engines[(model, device)].providers[0]} | {model_ms:.2f} | {model_ms / base_ms:.2f} |"
            )
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
