"""A task's `extra` options, checked when its TaskSpec is made, so a typo fails before training.

Each kind names the options only it takes (`KindDef.options`: multilabel "threshold", regression "loss")
and checks their values (`KindDef.check_option`). The augmentation options (edgemtl.data.augment) suit
every kind: "scale_invariant" (the target survives a zoom), and the flip declaration a kind takes
(`KindDef.flip_option`), which the kind's `flip` acts on:

- "flip_pairs": class pairs a horizontal flip swaps, e.g. [["left", "right"]] (kinds whose classes can be
  mirror images of each other: labels, multilabel flags, mask ids);
- "flip_negate": true when a flip negates the values (a curvature, a lateral offset), or the list of
  value names it negates (regression).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from edgemtl.errors import ConfigError
from edgemtl.kinds.base import KindDef
from edgemtl.kinds.registry import KINDS, kind_of

if TYPE_CHECKING:
    from edgemtl.tasks import TaskSpec

AUGMENT_OPTIONS = ("flip_pairs", "flip_negate", "scale_invariant")


def extra_keys() -> tuple[str, ...]:
    """Every key a task's `extra` may hold: the kinds' own options, then the augmentation ones."""
    return (*_kind_options(), *AUGMENT_OPTIONS)


def _kind_options() -> tuple[str, ...]:
    return tuple(dict.fromkeys(key for kind in KINDS.values() for key in kind.options))


def check_extra(task: TaskSpec) -> None:
    """Refuse unknown keys (suggesting the closest), options of another kind, and unusable values."""
    keys = extra_keys()
    unknown = sorted(set(task.extra) - set(keys))
    if unknown:
        close = difflib.get_close_matches(unknown[0], keys, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected some of {', '.join(keys)}"
        raise ConfigError(f"task {task.name!r} has unknown extra key {unknown[0]!r}: {hint}")
    invariant = task.extra.get("scale_invariant", False)
    if not isinstance(invariant, bool):
        raise ConfigError(f"task {task.name!r} has scale_invariant {invariant!r}: expected true or false")
    kind = kind_of(task)
    for key in (key for key in _kind_options() if key in task.extra):
        if key not in kind.options:
            owners = [other for other in KINDS.values() if key in other.options]
            raise ConfigError(
                f"task {task.name!r} ({kind.value}) has {owners[0].options[key]}: "
                f"only {_joined([owner.value for owner in owners])} tasks take one"
            )
        kind.check_option(task, key)
    _check_flip_pairs(task, kind)
    _check_flip_negate(task, kind)


def _joined(names: list[str]) -> str:
    """Kinds named in a message: "a", "a or b", "a, b or c"."""
    return " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def _taking(option: str) -> str:
    return _joined([kind.value for kind in KINDS.values() if kind.flip_option == option])


def _check_flip_pairs(task: TaskSpec, kind: KindDef) -> None:
    pairs = task.extra.get("flip_pairs", [])
    if not (
        (not pairs or kind.flip_option == "flip_pairs")
        and isinstance(pairs, list | tuple)
        and all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in pairs)
        and all(isinstance(name, str) and name in task.classes for pair in pairs for name in pair)
        and len({name for pair in pairs for name in pair}) == 2 * len(pairs)
    ):
        raise ConfigError(
            f"task {task.name!r} ({kind.value}) has flip_pairs {pairs!r}: expected pairs of distinct "
            f"class names of a {_taking('flip_pairs')} task, e.g. [['left', 'right']]"
        )


def _check_flip_negate(task: TaskSpec, kind: KindDef) -> None:
    negate = task.extra.get("flip_negate", False)
    if not (
        isinstance(negate, bool)
        or (isinstance(negate, list | tuple) and all(isinstance(n, str) and n in task.classes for n in negate))
    ) or (negate and kind.flip_option != "flip_negate"):
        raise ConfigError(
            f"task {task.name!r} ({kind.value}) has flip_negate {negate!r}: expected true, false or a list "
            f"of value names ({', '.join(task.classes) or 'none'}) of a {_taking('flip_negate')} task"
        )
