"""Training: per-task losses, task weighting, the trainer and its checkpoints (PyTorch)."""

from edgemtl.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from edgemtl.train.trainer import TrainConfig, TrainResult, evaluate, resolve_device, train

__all__ = [
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
]
