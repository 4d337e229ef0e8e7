"""Checkpoints: everything needed to rebuild, export or resume a model, written atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgemtl import __version__
from edgemtl.errors import CheckpointError, ConfigError
from edgemtl.model import MultiTaskNet, create_model
from edgemtl.tasks import TaskSpec, validate_tasks

CHECKPOINT_FORMAT = "edgemtl-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass
class Checkpoint:
    """A trained model and the facts that travel with it into the exported file."""

    preset: str
    tasks: tuple[TaskSpec, ...]
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    model_state: dict[str, torch.Tensor]
    skips: bool = True
    epoch: int = 0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    edgemtl_version: str = __version__

    def build_model(self) -> MultiTaskNet:
        model = create_model(self.preset, self.tasks, skips=self.skips)
        model.load_state_dict(self.model_state)
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "edgemtl_version": self.edgemtl_version,
            "preset": self.preset,
            "skips": self.skips,
            "tasks": [t.to_dict() for t in self.tasks],
            "input_size": list(self.input_size),
            "normalization": {"mean": list(self.mean), "std": list(self.std), "color_order": "BGR"},
            "epoch": self.epoch,
            "metrics": self.metrics,
            "model": self.model_state,
        }


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(checkpoint.to_dict(), file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it 0600; give it the mode a plain open() would
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: expected a .pt file written by `edgemtl train`")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch's safe unpickler raises many types (KeyError, IndexError, ...) on garbage
        raise CheckpointError(
            f"checkpoint {path} cannot be read (not a PyTorch checkpoint file, or truncated): "
            "expected a .pt file written by `edgemtl train`"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an edgemtl checkpoint: expected a .pt file written by `edgemtl train`")
    if data.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {data.get('format_version')} (edgemtl "
            f"{data.get('edgemtl_version')}): this edgemtl reads version {CHECKPOINT_VERSION}"
        )
    try:
        normalization = data["normalization"]
        return Checkpoint(
            preset=data["preset"],
            tasks=validate_tasks(TaskSpec.from_dict(t) for t in data["tasks"]),
            input_size=tuple(data["input_size"]),
            mean=tuple(normalization["mean"]),
            std=tuple(normalization["std"]),
            model_state=data["model"],
            skips=data["skips"],
            epoch=data["epoch"],
            metrics=data["metrics"],
            edgemtl_version=data["edgemtl_version"],
        )
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or damaged ({exc}): re-run `edgemtl train`") from None
