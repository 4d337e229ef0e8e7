"""Training: per-task losses, task weighting, the trainer, validation and checkpoints (PyTorch)."""

from edgemtl.train.checkpoint import Checkpoint, load_checkpoint, random_checkpoint, save_checkpoint
from edgemtl.train.config import TrainConfig
from edgemtl.train.device import resolve_device
from edgemtl.train.trainer import TrainResult, train
from edgemtl.train.validate import validate_model

__all__ = [
    "Checkpoint",
    "TrainConfig",
    "TrainResult",
    "load_checkpoint",
    "random_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
    "validate_model",
]
