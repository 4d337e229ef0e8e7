"""The demo's data and budget (edgemtl demo: nano at 128x128, 3000 scenes, 12 epochs, seed 0) trained with
each segmentation loss setting: which one lifts the thin lane class without costing the others.

Scored on the demo's 600 held-out test scenes after the last epoch, PyTorch (the demo scores its best
epoch's exported file; the two agree to the parity check). Prints a Markdown table; progress to stderr.

    python benchmarks/demo_losses.py [--epochs 12] [--settings ce dice_ce ce+inverse_sqrt ...]
"""

from __future__ import annotations

import argparse

from loss_runs import SEGMENTATION, print_rows_as_they_come, train_and_score

from edgemtl.commands.demo import DemoConfig
from edgemtl.data import open_dataset
from edgemtl.data.splits import SYNTHETIC
from edgemtl.machine import describe_machine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig

SETTINGS = ("ce", "dice_ce", "ce+inverse_sqrt", "dice_ce+inverse_sqrt")


def main() -> None:
    demo = DemoConfig(objects=False)  # scene + segmentation, as NAVIGATION_TASKS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=demo.recipe.epochs)
    parser.add_argument("--train-size", type=int, default=demo.train_size)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="LOSS or LOSS+CLASS_WEIGHTS")
    args = parser.parse_args()

    size = TrainConfig(preset=demo.preset).resolved_input_size()
    counts = {"train": args.train_size, "val": demo.val_size, "test": demo.test_size}
    sets = tuple(
        open_dataset(SYNTHETIC, split, size=size, count=count, seed=demo.seed) for split, count in counts.items()
    )
    config = TrainConfig(preset=demo.preset, epochs=args.epochs, seed=demo.seed, device="cpu")
    classes = NAVIGATION_TASKS[1].classes

    def row(setting: str) -> list[str]:
        o = train_and_score(setting, NAVIGATION_TASKS, config, sets)
        segmentation = o.metrics[SEGMENTATION]
        ious = [f"{segmentation[f'iou_{c}']:.3f}" for c in classes]
        return [
            setting,
            f"{o.metrics['scene']['accuracy']:.3f}",
            f"{segmentation['miou']:.3f}",
            *ious,
            f"{o.seconds:.0f}",
        ]

    print(f"Machine: {describe_machine()}")
    print(
        f"{demo.preset} at {size[0]}x{size[1]}, the demo's scenes: {args.train_size} training, {demo.test_size} "
        f"held-out; {args.epochs} epochs, seed {demo.seed}; metrics after the last epoch\n"
    )
    header = ["segmentation loss", "scene accuracy", "mIoU", *(f"IoU {c}" for c in classes), "s"]
    print_rows_as_they_come(header, args.settings, row)


if __name__ == "__main__":
    main()
