"""The options for imbalanced data that the categorical kinds take: a loss by name, and class weights.

A task names them in its `extra` (TOML `[[tasks]] extra = {loss = "dice_ce", class_weights =
"median_frequency"}`, or `edgemtl train --loss segmentation=dice_ce --class-weights
segmentation=median_frequency`). Each kind lists the loss names it offers (`KindDef.loss_names`, the
first is its plain one) and computes them (edgemtl.kinds.losses). Class weights are either given, one
positive number per class (per label for multilabel: the weight of a positive), or computed from the
training targets' frequencies by one of CLASS_WEIGHTINGS (edgemtl.train.losses).

A task that names no loss trains with its kind's default (`KindDef.default_loss_options`, the recipe
measured best on rare classes; the plain loss for kinds without one). Training writes it out into the
task (`written_out`), so config.json and every checkpoint record the choice. NumPy only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from edgemtl.errors import ConfigError

if TYPE_CHECKING:
    from edgemtl.kinds.base import KindDef
    from edgemtl.tasks import TaskSpec

LOSS = "loss"
CLASS_WEIGHTS = "class_weights"

#: How class weights are computed from the training targets' class frequencies f_c (edgemtl.train.losses):
#: "median_frequency" w_c = median(f) / f_c (Eigen & Fergus); "inverse_sqrt" w_c = 1 / sqrt(f_c), milder.
CLASS_WEIGHTINGS = ("median_frequency", "inverse_sqrt")

RARE = 0.01  # a class under this share of the labelled pixels (masks) or images (labels) is rare

# How messages name a loss and a weighting: what a user reads when training starts and in `data check`.
_LOSS_WORDS = {"ce": "cross-entropy", "bce": "binary cross-entropy", "dice_ce": "Dice + cross-entropy"}


def suggestion(value: Any, allowed: tuple[str, ...]) -> str:
    """'; did you mean 'x'?' for the allowed names `value` begins or is close to, or '' when none is."""
    close = [name for name in allowed if name.startswith(str(value))] or difflib.get_close_matches(str(value), allowed)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def loss_name(task: TaskSpec, names: tuple[str, ...]) -> str:
    """The task's loss: its `extra.loss`, or the kind's plain one (the first of `names`). Training writes the
    default out first (`written_out`); a task that reaches a loss without it was recorded before defaults."""
    return str(task.extra.get(LOSS, names[0]))


def written_out(task: TaskSpec, kind: KindDef, recorded: Mapping[str, Any] | None = None) -> TaskSpec:
    """The task with the loss options it trains with in its `extra`: what it names; for a task naming no loss,
    `recorded` (the extra a resumed run saved for it: its loss, or none from before defaults, the plain one),
    else the kind's default (`default_loss_options`) under what it names (its own class weights win)."""
    if LOSS in task.extra or LOSS not in kind.options:
        return task
    if recorded is not None:
        defaults = {key: recorded[key] for key in (LOSS, CLASS_WEIGHTS) if key in recorded}
    else:
        defaults = dict(kind.default_loss_options)
    return replace(task, extra={LOSS: kind.loss_names[0], **defaults, **task.extra})


def describe_loss(task: TaskSpec, kind: KindDef) -> str:
    """The loss options a task trains with, in words: "Dice + cross-entropy with inverse_sqrt class weights"."""
    options = written_out(task, kind).extra
    name = str(options.get(LOSS, kind.loss_names[0]))
    weights = options.get(CLASS_WEIGHTS)
    words = _LOSS_WORDS.get(name, name)
    if weights is None:
        return f"{words} without class weights"
    return f"{words} with {weights if isinstance(weights, str) else 'given'} class weights"


def rare_handling(task: TaskSpec, kind: KindDef) -> str:
    """What training does about a rare class of `task`, in words: `train`'s start and `data check`'s warning."""
    used = describe_loss(task, kind)
    # Measured (benchmarks/rare_label.py): inverse_sqrt weights barely lifted a label at 1 % of the images.
    weigh_up = "more labelled examples of it help; class weights barely did in docs/benchmarks.md"
    if CLASS_WEIGHTS in task.extra or task.extra.get(LOSS, kind.loss_names[0]) != kind.loss_names[0]:
        return f"{used}, as named"
    if LOSS not in task.extra:
        if kind.default_loss_options:
            return f"{used}, the {kind.value} default, made for rare classes"
        return f"{used}, the {kind.value} default: it may not be learnt ({weigh_up})"
    if kind.default_loss_options:
        default = describe_loss(replace(task, extra={}), kind)
        return f"{used}, as named: it may not be learnt (the default, {default}, is made for rare classes)"
    return f"{used}, as named: it may not be learnt ({weigh_up})"


def check_loss(task: TaskSpec, names: tuple[str, ...]) -> None:
    """An unknown loss name fails with the valid ones and the closest; another kind's loss says whose it is."""
    value = task.extra[LOSS]
    if value not in names:
        from edgemtl.kinds.registry import KINDS  # the kinds import this module

        owners = [kind.value for kind in KINDS.values() if value in kind.loss_names]
        expected = f"expected one of {', '.join(names)}"
        if owners:
            problem = f"cannot take loss {value!r}, a loss of {' and '.join(owners)} tasks: {expected}"
        else:
            problem = f"has unknown loss {value!r}: {expected}{suggestion(value, names)}"
        raise ConfigError(f"task {task.name!r} ({task.kind.value}) {problem}")


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
