"""Shared by rare_class.py and demo_losses.py: train one model per loss setting on the same data, budget and
seed, and score each on the same held-out scenes, so the settings compare side by side.

A setting is "LOSS" or "LOSS+WEIGHTS" for the segmentation task (e.g. "dice_ce+median_frequency"), or
"default": the task names no loss and trains with what a user's own config gets. The other tasks keep their
defaults. Metrics are PyTorch's on the held-out scenes after the last epoch (the
exported file scores the same, as export's parity check shows).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from edgemtl.data import ArrayDataset
from edgemtl.model import Preprocess
from edgemtl.tasks import TaskSpec
from edgemtl.train import TrainConfig, train
from edgemtl.train.validate import validate_model

SEGMENTATION = "segmentation"
DEFAULT = "default"  # the setting that names no loss


@dataclass
class Outcome:
    setting: str
    metrics: dict[str, dict[str, float]]  # held-out scenes, after the last epoch
    seconds: float


def with_setting(tasks: tuple[TaskSpec, ...], setting: str, target: str = SEGMENTATION) -> tuple[TaskSpec, ...]:
    """The tasks with task `target`'s loss (and class weights) set as `setting` says."""
    if setting == DEFAULT:
        named = ("loss", "class_weights")
        return tuple(replace(t, extra={k: v for k, v in t.extra.items() if k not in named}) for t in tasks)
    loss, _, weights = setting.partition("+")
    extra = {"loss": loss, **({"class_weights": weights} if weights else {})}
    return tuple(replace(t, extra={**t.extra, **extra}) if t.name == target else t for t in tasks)


def train_and_score(
    setting: str,
    tasks: tuple[TaskSpec, ...],
    config: TrainConfig,
    sets: tuple[ArrayDataset, ArrayDataset, ArrayDataset],
    target: str = SEGMENTATION,
) -> Outcome:
    """Train on sets[0] (validating on sets[1]), score the last epoch's model on sets[2]."""
    train_data, val_data, test_data = sets
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = train(
            replace(config, plots=False),
            with_setting(tasks, setting, target),
            train_data,
            val_data,
            Path(folder),
            progress=False,
            log=lambda line: print(f"[{setting}] {line}", file=sys.stderr),
        )
        from edgemtl.train import load_checkpoint

        model = load_checkpoint(result.last_checkpoint).build_model()
    metrics = validate_model(model, test_data, Preprocess(config.mean, config.std))
    return Outcome(setting, metrics, time.perf_counter() - started)


def load_text() -> str:
    """The 1, 5 and 15 minute load averages, to print beside the results (the machine is shared)."""
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def print_rows_as_they_come(header: list[str], settings: list[str], row_of) -> None:
    """The table's header, then one row per setting as soon as it is measured (runs take minutes each)."""
    print(table(header, []), flush=True)
    for setting in settings:
        print("| " + " | ".join(row_of(setting)) + " |", flush=True)
    print(f"\n{load_text()} at the end", flush=True)
