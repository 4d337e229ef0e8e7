"""The options for imbalanced data that the categorical kinds take: a loss by name, and class weights.

A task names them in its `extra` (TOML `[[tasks]] extra = {loss = "dice_ce", class_weights =
"median_frequency"}`, or `edgemtl train --loss segmentation=dice_ce --class-weights
segmentation=median_frequency`). Each kind lists the loss names it offers (`KindDef.loss_names`, the
first is its default) and computes them (edgemtl.kinds.losses). Class weights are either given, one
positive number per class (per label for multilabel: the weight of a positive), or computed from the
training targets' frequencies by one of CLASS_WEIGHTINGS (edgemtl.train.losses). NumPy only.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from edgemtl.errors import ConfigError

if TYPE_CHECKING:
    from edgemtl.tasks import TaskSpec

LOSS = "loss"
CLASS_WEIGHTS = "class_weights"

#: How class weights are computed from the training targets' class frequencies f_c (edgemtl.train.losses):
#: "median_frequency" w_c = median(f) / f_c (Eigen & Fergus); "inverse_sqrt" w_c = 1 / sqrt(f_c), milder.
CLASS_WEIGHTINGS = ("median_frequency", "inverse_sqrt")


def suggestion(value: Any, allowed: tuple[str, ...]) -> str:
    """'; did you mean 'x'?' for the allowed names `value` begins or is close to, or '' when none is."""
    close = [name for name in allowed if name.startswith(str(value))] or difflib.get_close_matches(str(value), allowed)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def loss_name(task: TaskSpec, names: tuple[str, ...]) -> str:
    """The task's loss: its `extra.loss`, or the kind's default (the first of `names`)."""
    return str(task.extra.get(LOSS, names[0]))


def check_loss(task: TaskSpec, names: tuple[str, ...]) -> None:
    """An unknown loss name fails with the valid ones and the closest."""
    value = task.extra[LOSS]
    if value not in names:
        raise ConfigError(
            f"task {task.name!r} ({task.kind.value}) has unknown loss {value!r}: expected one of "
            f"{', '.join(names)}{suggestion(value, names)}"
        )


def check_class_weights(task: TaskSpec, counted: str, noun: str) -> None:
    """A weighting's name, or one positive finite number per class (`counted`: '3 classes'; `noun`: what one
    weight is for)."""
    value = task.extra[CLASS_WEIGHTS]
    count = len(task.classes)
    expected = f"expected {' or '.join(CLASS_WEIGHTINGS)}, or {count} positive numbers, one per {noun}"
    if isinstance(value, str):
        if value not in CLASS_WEIGHTINGS:
            raise ConfigError(
                f"task {task.name!r} has unknown class_weights {value!r}: {expected}"
                f"{suggestion(value, CLASS_WEIGHTINGS)}"
            )
        return
    if not isinstance(value, list | tuple):
        raise ConfigError(f"task {task.name!r} has class_weights {value!r}: {expected}")
    if len(value) != count:
        raise ConfigError(
            f"task {task.name!r} has {len(value)} class_weights for {counted} ({', '.join(task.classes)}): {expected}"
        )
    if not all(_positive(v) for v in value):
        raise ConfigError(f"task {task.name!r} has class_weights {list(value)!r}: {expected}")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
