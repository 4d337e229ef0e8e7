"""Fault cases that need PyTorch: data, configs, checkpoints, and signals mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.cli.fault_kit import (
    Kit,
    fault,
    nothing,
    plays_with_every_frame,
)
from tests.helpers import (
    write_images,
    write_mjpeg_avi,
)

# --- data, configs, checkpoints (PyTorch) -----------------------------------------------------------------


def _dataset(kit: Kit, rows: list[str]) -> None:
    """A folder dataset of one classification task with the given labels.csv rows (after the header)."""
    root = kit.root / "data"
    write_images(root / "images", 2, size=(32, 32))
    tasks = [{"name": "scene", "kind": "classification", "classes": ["left", "right"], "weight": 1.0}]
    (root / "tasks.json").write_text(json.dumps(tasks))
    (root / "labels.csv").write_text("\n".join(["image,scene", *rows]) + "\n")


@fault(
    "config-not-utf8",
    "a config file saved as Latin-1",
    "edgemtl train --config latin1.toml",
    "Error: config file latin1.toml is not UTF-8 text (byte 0xe9 at position …): save it as UTF-8",
    "the config file",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    (kit.root / "latin1.toml").write_bytes("# caméra\n[train]\nepochs = 1\n".encode("latin-1"))


@fault(
    "config-unknown-key",
    "a config key misspelt",
    "edgemtl train --config typo.toml",
    "Error: …'epoch'…'epochs'…",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    (kit.root / "typo.toml").write_text("[train]\nepoch = 3\n")


fault(
    "data-missing",
    "a data folder that does not exist",
    "edgemtl train --data nowhere -o run",
    "Error: dataset …/nowhere does not exist: expected a dataset folder or a manifest file",
    uses="checkpoint",
)(nothing)

fault(
    "labels-short-row",
    "a labels.csv row with fewer cells than the header",
    "edgemtl train --data data -o run",
    "Error: …/data/labels.csv line 3 has 1 fields: expected 2, as in the header (leave a cell empty, with its comma, "
    "for a missing label)",
    "the dataset",
    uses="checkpoint",
)(lambda kit: _dataset(kit, ["img_0.png,left", "img_1.png"]))

fault(
    "labels-outside",
    "a labels.csv naming ../../etc/passwd",
    "edgemtl train --data data -o run",
    "Error: 1 paths in …/data/labels.csv outside the dataset folder …/data (first: ../../etc/passwd): expected paths "
    "inside it; pass --allow-outside-paths (allow_outside=True) to read them anyway",
    "the dataset",
    uses="checkpoint",
)(lambda kit: _dataset(kit, ["img_0.png,left", "../../etc/passwd,right"]))


@fault(
    "manifest-absolute",
    "a manifest naming an absolute path",
    "edgemtl export best.pt --verify-data manifest.csv -o m.onnx",
    "Error: 1 paths in manifest.csv outside the dataset folder . (first: /etc/hostname.png): expected paths inside "
    "it; pass --allow-outside-paths (allow_outside=True) to read them anyway",
    "the checkpoint",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    kit.checkpoint()
    from edgemtl.tasks import NAVIGATION_TASKS, tasks_to_json

    (kit.root / "tasks.json").write_text(tasks_to_json(NAVIGATION_TASKS))
    (kit.root / "manifest.csv").write_text("image,scene,segmentation\n/etc/hostname.png,left,m.png\n")


@fault(
    "checkpoint-corrupt",
    "a checkpoint of random bytes",
    "edgemtl export broken.pt -o m.onnx",
    "Error: checkpoint broken.pt cannot be read (not a PyTorch checkpoint file, or truncated): expected a .pt file "
    "written by `edgemtl train`",
    "the file",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    (kit.root / "broken.pt").write_bytes(np.random.default_rng(3).bytes(500))


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


@fault(
    "checkpoint-pickle",
    "a checkpoint whose pickle would run a command",
    "edgemtl export evil.pt -o m.onnx",
    "Error: checkpoint evil.pt cannot be read (not a PyTorch checkpoint file, or truncated): expected a .pt file "
    "written by `edgemtl train`",
    "no command runs (no file pwned appears)",
    uses="checkpoint",
    after=lambda root, _: _assert_absent(root / "pwned"),
)
def _(kit: Kit) -> None:
    (kit.root / "evil.pt").write_bytes(pickle.dumps({"model": _Payload()}))


def _assert_absent(path: Path) -> None:
    assert not path.exists(), f"{path} exists: the checkpoint's code ran"


@fault(
    "export-exists",
    "an export onto an existing file",
    "edgemtl export best.pt --no-verify -o old.onnx",
    "Error: old.onnx already exists: choose another path or pass --overwrite",
    "old.onnx",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    kit.checkpoint()
    (kit.root / "old.onnx").write_bytes(b"the model in production")


@fault(
    "export-read-only",
    "an export into a read-only folder",
    "edgemtl export best.pt --no-verify -o ro/m.onnx",
    "Error: … writing ro/m.onnx",
    "the checkpoint",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    kit.checkpoint()
    kit.read_only("ro")


@fault(
    "export-disk-full",
    "an export onto a disk too small for it",
    "edgemtl export best.pt --no-verify --overwrite -o disk/m.onnx",
    "Error: No space left on device writing disk/m.onnx…",
    "the model there before",
    uses="checkpoint",
)
def _(kit: Kit) -> None:
    kit.checkpoint()
    disk = kit.mount("disk", "size=256k")
    (disk / "m.onnx").write_bytes(b"the model in production")


class _StopAfterEpoch1(Exception):
    """A run cut short once its first epoch is saved, so it can be resumed."""


def _stop_after_epoch_1(line: str) -> None:
    if line.startswith("epoch   1/"):
        raise _StopAfterEpoch1


@fault(
    "train-disk-full",
    "a resumed training whose disk fills up (torch.save's error names no reason)",
    "edgemtl train --resume disk/run --epochs 3 --no-progress",
    "Error: no space left on device writing disk/run/….pt: the previous one is intact; free space and --resume",
    "the checkpoints, config.json and metrics.jsonl, at epoch 1: the run resumes once space is freed",
    uses="checkpoint",
    after=lambda root, _: _checkpoints_load(root / "disk" / "run"),
)
def _(kit: Kit) -> None:
    from edgemtl.commands.train import TrainOptions, run_train
    from edgemtl.train.config import DataConfig, RunConfig, TrainConfig

    disk = kit.mount("disk", "size=16m")
    settings = TrainConfig(input_size=(32, 32), epochs=3, batch_size=8, device="cpu", plots=False)
    run = RunConfig(train=settings, data=DataConfig(train_size=16, val_size=8))
    with contextlib.suppress(_StopAfterEpoch1):
        run_train(TrainOptions(config=run, out=disk / "run", progress=False), log=_stop_after_epoch_1)
    with open(disk / "filler", "wb") as filler:  # 64 KiB left: the config and metrics fit, a checkpoint does not
        filler.write(bytes(shutil.disk_usage(disk).free - 65536))


fault(
    "eval-missing-checkpoint",
    "a checkpoint that does not exist",
    "edgemtl eval -m missing.pt -o out",
    "Error: model missing.pt does not exist: expected a checkpoint (.pt) written by `edgemtl train` or an .onnx "
    "file written by `edgemtl export`",
    uses="checkpoint",
)(nothing)


# --- signals ----------------------------------------------------------------------------------------------


def _started_writing(name: str) -> Callable[[Path], bool]:
    def ready(root: Path) -> bool:
        path = root / name
        return path.exists() and path.stat().st_size > 0

    return ready


@fault(
    "sigterm-camera",
    "SIGTERM (docker stop) while recording",
    "edgemtl camera clip.avi -m model.onnx -o out.mp4 --live",
    "terminated (SIGTERM); files written so far are complete",
    "out.mp4 plays, with every frame written",
    exit_code=143,
    send=signal.SIGTERM,
    ready=_started_writing("out.mp4"),
    after=plays_with_every_frame("out.mp4"),
)
def _(kit: Kit) -> None:
    kit.model()
    write_mjpeg_avi(kit.root / "clip.avi", 400, fps=40.0)


@fault(
    "sigterm-train",
    "SIGTERM while training",
    "edgemtl train --preset nano --input-size 32 --train-size 64 "
    "--epochs 200 --batch-size 32 --device cpu --no-progress -o run",
    "terminated (SIGTERM); files written so far are complete",
    "every checkpoint written loads; no partial file",
    exit_code=143,
    send=signal.SIGTERM,
    ready=_started_writing("run/config.json"),
    uses="checkpoint",
    after=lambda root, _: _checkpoints_load(root / "run"),
)
def _(kit: Kit) -> None:
    """Nothing to prepare: synthetic scenes."""


def _checkpoints_load(run: Path) -> None:
    """Whatever checkpoint the run had written is whole (they are written atomically), and no partial file is left."""
    import torch

    for path in run.glob("*.pt"):
        assert isinstance(torch.load(path, map_location="cpu", weights_only=True), dict)
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "a temporary file was left behind"
