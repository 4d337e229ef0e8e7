"""Data-parallel training under `torchrun`: PyTorch's own DistributedDataParallel, not a second trainer.

torchrun starts one process per device and tells each its place through environment variables (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). The trainer calls `setup` once: without those
variables it gets a single-process context and every helper here does nothing, so there is one code
path for one process and for many. NCCL joins GPUs, gloo joins CPU processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from edgemtl.errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job; the defaults describe a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # whether `setup` started the process group, and so `teardown` ends it

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files and logs, so N processes leave one run folder, not N racing ones."""
        return self.rank == 0


SINGLE_PROCESS = Distributed()


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name}={text!r} is not an integer: it is set by torchrun") from None


def is_main_process() -> bool:
    """Rank 0 according to torchrun's environment: usable before any process group exists (the CLI)."""
    return _env_int("RANK", 0) == 0


def setup(device: torch.device) -> tuple[Distributed, torch.device]:
    """Join the torchrun job if there is one; returns the context and the device this rank trains on."""
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return Distributed(), device
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)  # one GPU per process, as torchrun intends
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, dist.get_world_size(), owns_group), device


def teardown(context: Distributed) -> None:
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, context: Distributed, device: torch.device) -> nn.Module:
    """The module to run training steps through: DDP averages gradients across ranks during backward.

    BatchNorm statistics are rank 0's, broadcast at every forward (DDP's default), so all ranks hold the
    same model; checkpoints are taken from the unwrapped `model`, whose state-dict keys have no `module.`.
    """
    if context.world_size == 1:
        return model
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(order: torch.Tensor, context: Distributed) -> torch.Tensor:
    """This rank's part of an epoch's shuffled order, as DistributedSampler(drop_last=True) would give.

    Every rank draws the same permutation (same seed, same generator) and takes every world_size-th
    index from its rank on: the parts are disjoint and equally long, so every rank runs the same number
    of steps (an unequal count would leave DDP waiting forever for the rank that stopped early).
    """
    usable = len(order) - len(order) % context.world_size
    return order[context.rank : usable : context.world_size]


def average_in_place(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over the ranks of a torchrun job, in place; unchanged in a single process."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def average_buffers(model: nn.Module, context: Distributed) -> None:
    """Average BatchNorm running statistics over the ranks, in place, at the end of an epoch.

    DDP keeps parameters identical but lets each rank's last forward update its own running statistics;
    averaging them (as timm's distribute_bn does) gives validation and the checkpoint statistics from
    every shard, and leaves every rank holding the same model.
    """
    if context.world_size == 1:
        return
    for buffer in model.buffers():
        if buffer.is_floating_point():
            average_in_place(buffer)


def mean_across_ranks(values: dict[str, float], context: Distributed) -> dict[str, float]:
    """The mean over ranks of per-rank numbers (each rank's training losses over its own shard)."""
    if context.world_size == 1 or not values:
        return values
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=backend_device)
    return dict(zip(values, average_in_place(tensor).tolist()))


def from_main(value: Any, context: Distributed) -> Any:
    """Rank 0's value on every rank (validation metrics), so all ranks log and decide alike."""
    if context.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
