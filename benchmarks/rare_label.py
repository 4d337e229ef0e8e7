"""A rare image label: plain cross-entropy against class-weighted CE (and focal loss), at the same epochs.

Synthetic road scenes labelled left / straight / right / blocked, with "blocked" drawn in RARE_SHARE of the
training and validation scenes (1 % by default: 12 of 1200) and the other three equally often: the case of a
rare event a robot must still recognise. One classification-only nano net per setting and seed, at 64x64;
scored on held-out scenes with every label equally often, so the rare label's recall is measured on as many
frames as the others'. Reported per setting, as the mean (± spread) over the seeds:

- recall and F1 of the rare label (F1 at the training skew: its precision counts the false alarms the common
  labels would give at their real shares);
- balanced accuracy (the mean recall over the labels), and accuracy at the training skew (each label's recall
  weighted by its training share: what a user sees on data like the training split).

    python benchmarks/rare_label.py [--train-size 1200] [--epochs 8] [--seeds 0 1 2] [--settings ce ce+inverse_sqrt]
"""

from __future__ import annotations

import argparse

import numpy as np
from loss_runs import load_text, table, train_and_score

from edgemtl.data import ArrayDataset
from edgemtl.data.synthetic import render_scene, sample_scene_params
from edgemtl.machine import describe_machine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig

SIZE = (64, 64)
SCENE = "scene"
RARE = 3  # "blocked"
SETTINGS = ("ce", "ce+inverse_sqrt")  # also measurable: "default", "ce+median_frequency", "focal"


def scenes(labels: np.ndarray, seed: int) -> ArrayDataset:
    """One scene per label, scene i from its own (seed, i) stream."""
    images = np.empty((len(labels), *SIZE, 3), np.uint8)
    for i, label in enumerate(labels):
        images[i] = render_scene(sample_scene_params(np.random.default_rng([seed, i]), direction=int(label)), SIZE)[0]
    return ArrayDataset(images, {SCENE: labels.astype(np.int64)})


def skewed_labels(count: int, rare_share: float, rng: np.random.Generator) -> np.ndarray:
    """`count` labels, RARE in `rare_share` of them (at least one), the other labels equally often, shuffled."""
    rare = max(1, round(count * rare_share))
    common = [label for label in range(4) if label != RARE]
    labels = np.array([RARE] * rare + [common[i % 3] for i in range(count - rare)])
    return rng.permutation(labels)


def scores(confusion: np.ndarray, shares: np.ndarray) -> dict[str, float]:
    """Rare recall and F1 (at the training skew), balanced accuracy and accuracy at the skew, from the confusion
    matrix of the balanced test scenes (rows: true label, columns: prediction, as edgemtl's meter counts)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    per_true = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)  # P(predicted | true)
    recall = np.diag(per_true)
    at_skew = per_true * shares[:, None]  # fractions of frames, were the labels at their training shares
    precision = at_skew[RARE, RARE] / max(at_skew[:, RARE].sum(), 1e-12)
    f1 = 2 * precision * recall[RARE] / max(precision + recall[RARE], 1e-12)
    return {
        "rare recall": recall[RARE],
        "rare F1 at skew": f1,
        "balanced accuracy": recall.mean(),
        "accuracy at skew": float(recall @ shares),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=1200)
    parser.add_argument("--val-size", type=int, default=200)
    parser.add_argument("--test-per-label", type=int, default=100)
    parser.add_argument("--rare-share", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="default, LOSS or LOSS+CLASS_WEIGHTS")
    args = parser.parse_args()

    tasks = tuple(t for t in NAVIGATION_TASKS if t.name == SCENE)
    classes = tasks[0].classes
    print(f"Machine: {describe_machine()}")
    print(
        f"nano at {SIZE[0]}x{SIZE[1]}, classification only; {args.train_size} training scenes with "
        f"{classes[RARE]!r} in {100 * args.rare_share:g} % of them, {args.epochs} epochs, seeds "
        f"{', '.join(map(str, args.seeds))}; scored on {args.test_per_label} held-out scenes per label after the "
        "last epoch; mean ± spread (half the range) over the seeds\n",
        flush=True,
    )
    measured: dict[str, list[dict[str, float]]] = {setting: [] for setting in args.settings}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        train_labels = skewed_labels(args.train_size, args.rare_share, rng)
        shares = np.bincount(train_labels, minlength=4) / len(train_labels)
        sets = (
            scenes(train_labels, seed),
            scenes(skewed_labels(args.val_size, args.rare_share, rng), seed + 1000),
            scenes(np.repeat(np.arange(4), args.test_per_label), seed + 2000),
        )
        config = TrainConfig(preset="nano", input_size=SIZE, epochs=args.epochs, seed=seed, device="cpu")
        for setting in args.settings:
            outcome = train_and_score(setting, tasks, config, sets, target=SCENE)
            found = scores(np.array(outcome.metrics[SCENE]["confusion"]), shares)
            measured[setting].append(found | {"s": outcome.seconds})
            print(f"seed {seed} {setting}: " + ", ".join(f"{k} {v:.3f}" for k, v in found.items()), flush=True)

    header = ["loss", "rare recall", "rare F1 at skew", "balanced accuracy", "accuracy at skew", "s per run"]
    rows = []
    for setting, runs in measured.items():
        cells = []
        for key in header[1:]:
            values = np.array([run[key if key != "s per run" else "s"] for run in runs])
            spread = (values.max() - values.min()) / 2
            cells.append(f"{values.mean():.0f}" if key == "s per run" else f"{values.mean():.3f} ± {spread:.3f}")
        rows.append([setting, *cells])
    print("\n" + table(header, rows))
    print(f"\n{load_text()} at the end", flush=True)


if __name__ == "__main__":
    main()
