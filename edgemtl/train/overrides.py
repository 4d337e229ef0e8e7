"""Changing a run's configuration after it is written: settings from the command line or a script
(`with_overrides`), and the check that a resumed run keeps the settings it started with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from edgemtl.errors import ConfigError
from edgemtl.kinds.imbalance import CLASS_WEIGHTINGS, CLASS_WEIGHTS, LOSS, suggestion
from edgemtl.tasks import TaskSpec
from edgemtl.train.config import DataConfig, RunConfig, TrainConfig

# Keys that may differ when a run is resumed: more epochs extend it; the device says where, not what;
# plots are drawn from the history, never read back by training.
RESUMABLE_CHANGES = frozenset({"train.epochs", "device", "train.plots"})
TASK_OPTIONS = (LOSS, CLASS_WEIGHTS)  # a task's options settable by `tasks.<task>.<option>` overrides


def with_overrides(config: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """The configuration with settings replaced, keyed as the file lays them out: `seed`, `model.preset`,
    `train.epochs`, `data.train`... (command-line flags, or a script's own choices).

    `tasks.<task>.<option>` sets one of TASK_OPTIONS of a task of `config.tasks` (resolve them first: the
    data's own tasks are known before its frames load); class weights may come as text, "1,4.5" or a name.
    """
    train: dict[str, Any] = {}
    data: dict[str, Any] = {}
    per_task: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        if section.startswith("tasks.") and name in TASK_OPTIONS:
            per_task.setdefault(section.removeprefix("tasks."), {})[name] = _option_value(name, value)
        elif section in ("", "model", "train") and name in {f.name for f in fields(TrainConfig)}:
            train[name] = value
        elif section == "data" and name in {f.name for f in fields(DataConfig)}:
            data[name] = value
        else:
            raise ConfigError(f"unknown setting {key!r}: expected a key of the config file, e.g. train.epochs")
    tasks = _with_task_options(config.tasks, per_task)
    return replace(
        config, train=replace(config.train, **train), data=replace(config.data or DataConfig(), **data), tasks=tasks
    )


def is_task_option(key: str) -> bool:
    """Whether an override key sets a task's option (`tasks.<task>.loss`), applied once the tasks are known."""
    return key.startswith("tasks.")


def _with_task_options(tasks: tuple[TaskSpec, ...], per_task: Mapping[str, Mapping[str, Any]]) -> tuple[TaskSpec, ...]:
    names = [t.name for t in tasks]
    for name in per_task:
        if name not in names:
            raise ConfigError(
                f"no task {name!r} to set {', '.join(per_task[name])} on: the tasks are {', '.join(names) or 'none'}"
                f"{suggestion(name, tuple(names))}"
            )
    return tuple(
        replace(t, extra={**t.extra, **per_task[t.name]}) if t.name in per_task else t  # checked as it is made
        for t in tasks
    )


def _option_value(name: str, value: Any) -> Any:
    """Class weights given as text ('1,4.5') become numbers; any other value is checked by the task."""
    if name != CLASS_WEIGHTS or not isinstance(value, str) or value in CLASS_WEIGHTINGS:
        return value
    try:
        return [float(part) for part in value.split(",")]
    except ValueError:
        return value  # the task's check names it and what is expected


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Dotted keys (`train.learning_rate`, `tasks`) whose values differ between two `to_dict()` layouts."""
    flat_saved, flat_current = _flatten(saved), _flatten(current)
    return sorted(k for k in flat_saved.keys() | flat_current.keys() if flat_saved.get(k) != flat_current.get(k))


def check_resumable(saved: Mapping[str, Any], current: Mapping[str, Any], where: Path) -> None:
    """A run may only be continued with the configuration it started with (more epochs are fine).

    Dataset folders are compared resolved: runs recorded before folders were saved absolute hold them
    relative to where they started.
    """
    if saved.get("data"):
        saved = {**saved, "data": asdict(DataConfig(**saved["data"]).absolute())}
    changed = [key for key in config_differences(saved, current) if key not in RESUMABLE_CHANGES]
    if changed:
        shown = ", ".join(
            f"{key} (saved {_lookup(saved, key)!r}, now {_lookup(current, key)!r})" for key in changed[:3]
        )
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ConfigError(
            f"cannot resume {where}: the configuration differs from the saved one in {shown}{more}; "
            "only epochs may change (start a new run for other settings)"
        )


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Sections become dotted keys (`augment.flip`); lists (tasks, sizes) compare as wholes."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and not prefix:
            flat.update(_flatten(value, f"{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
