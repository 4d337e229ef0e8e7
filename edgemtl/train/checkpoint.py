"""Checkpoints: everything needed to rebuild, export or resume a model, written atomically.

Two kinds share one format: best.pt is lean (model, tasks, metrics: what export needs), last.pt also
carries the training state (optimizer, scheduler, grad scaler, task weighting, random streams, history)
so that `edgemtl train --resume` continues exactly where the run stopped. Both carry the resolved run
configuration. The training state and configuration are optional keys, so format version 1 still
describes every file and older checkpoints still load (they just cannot be resumed).
"""

from __future__ import annotations

import errno
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgemtl import __version__
from edgemtl.errors import CheckpointError, ConfigError, OutputError
from edgemtl.features import FeatureSpec
from edgemtl.kinds import kind_of
from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, MultiTaskNet, build_model, create_model, get_preset
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
    config: dict[str, Any] = field(default_factory=dict)  # the resolved run configuration (RunConfig.to_dict())
    training: dict[str, Any] | None = None  # what resuming needs; last.pt only, so best.pt stays lean
    # The frames that validated the run (edgemtl.data.ArrayDataset.frames_record): the data spec and the
    # images' names, or a synthetic split's count and seed. `edgemtl export` and `eval` score them by default.
    validation: dict[str, Any] | None = None
    # A vector model's features in input order and the training split's statistics; None for images.
    features: FeatureSpec | None = None
    encoder: str = ""  # "" the preset's own, or "timm:<name>" (absent in files from before timm encoders)
    resize: str = "stretch"  # the resize policy the export records (absent in older files: stretch)
    # Each task's class weights as its loss used them (given, or computed from the training targets).
    class_weights: dict[str, list[float]] = field(default_factory=dict)

    def build_model(self) -> MultiTaskNet:
        model = build_model(self.preset, self.tasks, skips=self.skips, features=self.features, encoder=self.encoder)
        model.load_state_dict(self.model_state)
        return model.eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "edgemtl_version": self.edgemtl_version,
            "preset": self.preset,
            "encoder": self.encoder,
            "resize": self.resize,
            "skips": self.skips,
            "tasks": [t.to_dict() for t in self.tasks],
            "input_size": list(self.input_size),
            "normalization": {"mean": list(self.mean), "std": list(self.std), "color_order": "BGR"},
            "epoch": self.epoch,
            "metrics": self.metrics,
            "model": self.model_state,
            "config": self.config,
            **({"training": self.training} if self.training is not None else {}),
            **({"validation": self.validation} if self.validation is not None else {}),
            **({"features": self.features.to_dict()} if self.features is not None else {}),
            **({"class_weights": self.class_weights} if self.class_weights else {}),
        }


class _Writes:
    """A file's `write` that keeps the OSError it raised. torch.save reports a write that failed (a full disk)
    as RuntimeError("[enforce fail at inline_container.cc…] unexpected pos …"), the reason lost."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.file.flush()


def random_checkpoint(
    preset: str,
    tasks: tuple[TaskSpec, ...],
    input_size: tuple[int, int] | None = None,
    seed: int = 0,
    varied: bool = False,
) -> Checkpoint:
    """An untrained model of `preset` with `tasks` at `input_size` (default: the preset's), as a checkpoint.

    What speed benchmarks and cross-machine parity checks export: neither depends on the weights, and the
    seed makes every call give the same ones. `varied`: each head's outputs made to vary as a trained one's
    (KindDef.vary_untrained: a detection head's scores spread apart around 0.5, not all tied at its prior), for
    checks that compare two runtimes' boxes."""
    torch.manual_seed(seed)
    model = create_model(preset, tasks).eval()
    for task in tasks if varied else ():
        kind_of(task).vary_untrained(model.heads[task.name])
    size = tuple(input_size) if input_size is not None else get_preset(preset).input_size
    return Checkpoint(preset, tasks, size, DEFAULT_MEAN, DEFAULT_STD, model.state_dict())


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> Path:
    """Write to a temporary file beside `path`, then rename: a crash or a full disk never leaves half a file,
    and the previous checkpoint at `path` stays as it was until the new one is whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            writes = _Writes(file)
            try:
                torch.save(checkpoint.to_dict(), writes)
            except RuntimeError:
                if writes.error is None:
                    raise
                raise writes.error from None  # the reason torch.save's error leaves out
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it 0600; give it the mode a plain open() would
        os.replace(temporary, path)
    except OSError as exc:  # a full disk, a read-only folder: torch.save's error names no file
        Path(temporary).unlink(missing_ok=True)
        raise _write_error(exc, path) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _write_error(error: OSError, path: Path) -> OutputError:
    kept = "the previous one is intact" if path.exists() else "nothing was written"
    if error.errno == errno.ENOSPC:
        return OutputError(f"no space left on device writing {path}: {kept}; free space and --resume")
    return OutputError(f"cannot write checkpoint {path} ({error.strerror or error}): {kept}; free space and --resume")


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
            tasks=_saved_tasks(validate_tasks(TaskSpec.from_dict(t) for t in data["tasks"]), data["model"]),
            input_size=tuple(data["input_size"]),
            mean=tuple(normalization["mean"]),
            std=tuple(normalization["std"]),
            model_state=data["model"],
            skips=data["skips"],
            epoch=data["epoch"],
            metrics=data["metrics"],
            edgemtl_version=data["edgemtl_version"],
            config=data.get("config", {}),  # absent in files from before configs were recorded
            training=data.get("training"),
            class_weights=data.get("class_weights", {}),  # absent before issue 13, or without class weights
            validation=data.get("validation"),  # absent in files from before issue 12, or data given in memory
            features=FeatureSpec.from_dict(data["features"]) if "features" in data else None,  # vector models
            encoder=str(data.get("encoder", "")),
            resize=str(data.get("resize", "stretch")),
        )
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path} is incomplete or damaged ({exc}): re-run `edgemtl train`") from None


def _saved_tasks(tasks: tuple[TaskSpec, ...], state: dict[str, Any]) -> tuple[TaskSpec, ...]:
    """Each task as its weights were trained (KindDef.saved_task): older files keep their heads' layout."""
    keys = frozenset(state)
    return tuple(kind_of(task).saved_task(task, keys) for task in tasks)


def load_resumable(path: Path) -> Checkpoint:
    """A checkpoint that carries training state: the last.pt of a run, written by this edgemtl."""
    checkpoint = load_checkpoint(path)
    if checkpoint.training is None or not checkpoint.config:
        raise CheckpointError(
            f"checkpoint {path} holds no training state (a best.pt, or written by an older edgemtl): "
            "resume from a run folder whose last.pt was written by this version"
        )
    return checkpoint


def capture_rng(batch_order: torch.Generator) -> dict[str, Any]:
    """Every random stream training draws from, as tensors and plain values that `weights_only` loading accepts."""
    _, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "torch": torch.get_rng_state(),
        "batch_order": batch_order.get_state(),
    }
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], batch_order: torch.Generator) -> None:
    """Put every random stream back where `capture_rng` found it, so a resumed run draws the same numbers."""
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    batch_order.set_state(state["batch_order"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])  # another GPU count: the CUDA streams start afresh


def training_state(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    weighting: torch.nn.Module,
    batch_order: torch.Generator,
    best_score: float,
    best_metrics: dict[str, dict[str, float]],
    history: list[dict[str, Any]],
    world_size: int,
) -> dict[str, Any]:
    """What last.pt needs beyond the model for a resumed run to continue as if never stopped.

    The process count is kept because each rank's shard of every epoch, and so every step, depends on it.
    """
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "weighting": weighting.state_dict(),
        "rng": capture_rng(batch_order),
        "best_score": best_score,
        "best_metrics": best_metrics,
        "history": history,
        "world_size": world_size,
    }


def restore_training(
    state: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    weighting: torch.nn.Module,
    batch_order: torch.Generator,
) -> tuple[float, dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Load `training_state` back into freshly built objects; returns the best score, its metrics and the history."""
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty when the run was on the CPU, where AMP is off
        scaler.load_state_dict(state["scaler"])
    weighting.load_state_dict(state["weighting"])
    restore_rng(state["rng"], batch_order)
    return state["best_score"], state["best_metrics"], state["history"]
