"""Whether a run may continue from its last.pt as asked: the checks `train(resume=True)` makes before any work.

A resumed run must end as the uninterrupted one would have: the same configuration (more epochs allowed, no
fewer than it has trained) and the same process count (each process's batches depend on it).
"""

from __future__ import annotations

from pathlib import Path

from edgemtl.errors import ConfigError
from edgemtl.train import distributed
from edgemtl.train.checkpoint import Checkpoint
from edgemtl.train.config import RunConfig
from edgemtl.train.losses import as_trained
from edgemtl.train.overrides import check_resumable


def check_resume(resumed: Checkpoint, run_dir: Path, run_config: RunConfig) -> None:
    """Whether the run's last.pt allows continuing it with `run_config`."""
    check_resumable(as_trained(resumed.config), run_config.to_dict(), run_dir)
    epochs = run_config.train.epochs
    if epochs < resumed.epoch:
        raise ConfigError(
            f"cannot resume {run_dir} for {epochs} epochs: it has trained {resumed.epoch} already; "
            f"give at least {resumed.epoch}"
        )


def check_world_size(resumed: Checkpoint | None, context: distributed.Distributed, run_dir: Path) -> None:
    """The process count a resumed run trained with is the one it continues with (the group is torn down
    before the error, so every rank exits cleanly)."""
    trained_with = resumed.training.get("world_size", 1) if resumed is not None else context.world_size
    if trained_with != context.world_size:
        distributed.teardown(context)
        raise ConfigError(
            f"cannot resume {run_dir} with {context.world_size} process(es): it trained with {trained_with}, "
            "and the batches each process sees depend on that; resume with the same --nproc_per_node"
        )
