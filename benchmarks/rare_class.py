"""A rare, thin mask class: plain cross-entropy against the imbalance losses, at the same epochs.

Synthetic road scenes whose lane markings are drawn at half their usual width, so "lane" covers about
0.6 % of the pixels (background 80 %, path 16 %, obstacle 4 %): the situation of kerbs and lane lines on
real road frames. One segmentation-only nano net per loss setting, same scenes, epochs and seed; IoU per
class on held-out scenes after the last epoch. Prints a Markdown table; progress goes to stderr.

    python benchmarks/rare_class.py [--train-size 1200] [--epochs 16] [--settings default ce dice_ce ...]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from loss_runs import SEGMENTATION, print_rows_as_they_come, train_and_score

from edgemtl.data import ArrayDataset
from edgemtl.data.synthetic import render_scene, sample_scene_params
from edgemtl.machine import describe_machine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig

SIZE = (128, 128)
THINNER = 0.5  # marking width relative to the synthetic scenes' own
SETTINGS = ("default", "ce")  # what a config naming no loss trains with, against plain cross-entropy
# measured before (docs/benchmarks.md): "ce+median_frequency", "focal", "ohem", "dice_ce", "dice_ce+inverse_sqrt"
RARE = "lane"


def thin_marking_scenes(count: int, seed: int) -> ArrayDataset:
    """`count` scenes, scene i from its own (seed, i) stream, lane markings drawn THINNER times as wide."""
    images = np.empty((count, *SIZE, 3), np.uint8)
    masks = np.empty((count, *SIZE), np.uint8)
    for i in range(count):
        params = sample_scene_params(np.random.default_rng([seed, i]), direction=i % 4)
        params = replace(params, line_half_width=params.line_half_width * THINNER)
        images[i], masks[i], _ = render_scene(params, SIZE)
    return ArrayDataset(images, {SEGMENTATION: masks})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=1200)
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--test-size", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=16)  # where the target is measured
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="default, LOSS or LOSS+CLASS_WEIGHTS")
    args = parser.parse_args()

    tasks = tuple(t for t in NAVIGATION_TASKS if t.name == SEGMENTATION)
    scenes = thin_marking_scenes(args.train_size + args.val_size + args.test_size, args.seed)
    cut = (args.train_size, args.train_size + args.val_size)
    sets = (scenes.subset(slice(0, cut[0])), scenes.subset(slice(*cut)), scenes.subset(slice(cut[1], None)))
    shares = np.bincount(sets[0].targets[SEGMENTATION].ravel(), minlength=len(tasks[0].classes))
    shares = shares / shares.sum()
    config = TrainConfig(preset="nano", input_size=SIZE, epochs=args.epochs, seed=args.seed, device="cpu")
    classes = tasks[0].classes

    def row(setting: str) -> list[str]:
        o = train_and_score(setting, tasks, config, sets)
        segmentation = o.metrics[SEGMENTATION]
        ious = [f"{segmentation[f'iou_{c}']:.3f}" for c in classes]
        return [setting, *ious, f"{segmentation['miou']:.3f}", f"{o.seconds:.0f}"]

    print(f"Machine: {describe_machine()}")
    print(
        f"nano at {SIZE[0]}x{SIZE[1]}, segmentation only; {args.train_size} training scenes, {args.epochs} epochs, "
        f"seed {args.seed}; IoU on {args.test_size} held-out scenes after the last epoch. Training pixel shares: "
        + ", ".join(f"{c} {100 * s:.2f} %" for c, s in zip(classes, shares))
        + "\n"
    )
    print_rows_as_they_come(["loss", *(f"IoU {c}" for c in classes), "mIoU", "s"], args.settings, row)


if __name__ == "__main__":
    main()
