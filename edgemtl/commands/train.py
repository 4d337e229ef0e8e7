"""`edgemtl train` as a call: a configuration (file, run folder or object) plus overrides in, a run out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgemtl.data import dataset_tasks, training_sets
from edgemtl.errors import ConfigError
from edgemtl.paths import fresh_dir
from edgemtl.train import TrainResult, train
from edgemtl.train.checkpoint import load_resumable
from edgemtl.train.config import RunConfig, load_config
from edgemtl.train.distributed import is_main_process
from edgemtl.train.overrides import check_resumable, is_task_option, with_overrides


@dataclass(frozen=True)
class TrainOptions:
    """What `edgemtl train` is given.

    Settings come from `overrides`, then `config` (a RunConfig, a TOML file or a run's config.json; with
    `resume` and no config, the run's saved one), then TrainConfig's and DataConfig's defaults.
    """

    config: RunConfig | Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # file keys: "train.epochs", "data.train"...
    resume: Path | None = None  # continue this run folder from its last.pt
    out: Path | None = None  # the run folder; a new numbered one if it exists [runs/train/exp]
    progress: bool = True


DEFAULT_OUT = Path("runs/train/exp")


def resolve_config(options: TrainOptions) -> RunConfig:
    """The run's whole configuration, checked, with the data's tasks and absolute data folders."""
    if options.resume is not None and options.out is not None:
        raise ConfigError("--out cannot be combined with --resume: a resumed run continues in its own folder")
    if isinstance(options.config, RunConfig):
        run = options.config
    elif options.config is not None:
        run = load_config(options.config)
    elif options.resume is not None:
        checkpoint = options.resume / "last.pt"
        run = RunConfig.from_dict(load_resumable(checkpoint).config, str(checkpoint))
    else:
        run = RunConfig()
    settings = {key: value for key, value in options.overrides.items() if not is_task_option(key)}
    run = with_overrides(run, settings)
    run = replace(run, data=run.data.absolute())
    tasks = run.tasks or dataset_tasks(run.data.train)
    task_options = {key: value for key, value in options.overrides.items() if is_task_option(key)}
    if run.data.columns() is not None:  # vector input: a table's feature rows have no size to resolve
        return with_overrides(replace(run, tasks=tasks), task_options)
    size = run.train.resolved_input_size()
    weights = str(Path(run.train.weights).resolve()) if run.train.weights else None
    settings = replace(run.train, input_size=size, weights=weights)
    settings.check_model()  # names, weights file and input size before minutes of data loading, not after
    # Recorded resolved, so a resume compares like with like; replace() checks the augmentation against
    # the tasks before any data is loaded.
    return with_overrides(replace(run, train=settings, tasks=tasks), task_options)


def _finished(run_dir: Path, run: RunConfig, log: Callable[[str], None]) -> TrainResult | None:
    """A resumed run that has trained all its epochs already: said so, with how to extend it, before any data
    is loaded; None when there are epochs left. Not an error (exit 0): a script that resumes a run until it is
    done (a preemptible machine's restart loop) may call it once more than needed."""
    resumed = load_resumable(run_dir / "last.pt")
    epochs = run.train.epochs
    if resumed.epoch != epochs:  # fewer left to train; more trained than asked is refused by `train`
        return None
    check_resumable(resumed.config, run.to_dict(), run_dir)  # other settings are refused, as `train` would
    log(
        f"{run_dir} is complete: it trained all {epochs} of its epochs, nothing to resume; to extend it, "
        f"give more: edgemtl train --resume {run_dir} --epochs N (N > {epochs})"
    )
    training = resumed.training or {}
    return TrainResult(
        run_dir, run_dir / "best.pt", run_dir / "last.pt", training.get("best_metrics", {}), training.get("history", [])
    )


def run_train(options: TrainOptions, log: Callable[[str], None] = print) -> TrainResult:
    """Load the data the configuration names, train, and return where the checkpoints are."""
    run = resolve_config(options)
    if options.resume is not None:
        finished = _finished(options.resume, run, log)
        if finished is not None:
            return finished
    source, config = run.data, run.train
    counts = {"train_count": source.train_size, "val_count": source.val_size, "seed": config.seed}
    outside = source.allow_outside_paths  # a dataset's listing may name files outside its folder
    train_set, val_set = training_sets(
        source.train,
        source.val,
        size=config.input_size,
        tasks=run.tasks,
        allow_outside=outside,
        columns=source.columns(),  # vector input: the table's feature columns
        **counts,
    )
    # A resumed run continues in its folder; under torchrun only rank 0 makes (and writes) a new one.
    out = options.out or DEFAULT_OUT
    run_dir = options.resume if options.resume is not None else fresh_dir(out) if is_main_process() else out
    return train(
        config,
        run.tasks,
        train_set,
        val_set,
        run_dir,
        progress=options.progress,
        log=log,
        resume=options.resume is not None,
        settings=run,
    )
