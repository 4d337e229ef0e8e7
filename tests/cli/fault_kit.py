"""The fault table's parts: a case (`Fault`), its folder (`Kit`), the registry `FAULTS` that `@fault` fills,
and the setups many cases share. The cases are in fault_cases_*.py; tests/cli/test_faults.py runs them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    count_frames,
    doctor_metadata,
    write_images,
    write_mjpeg_avi,
)


@dataclass
class Kit:
    """What a case's setup may ask for, in the case's own folder (`root`, also the command's working folder)."""

    root: Path
    model_file: Path
    checkpoint_file: Path | None
    mounts: list[Path]

    def model(self, name: str = "model.onnx") -> Path:
        return Path(shutil.copy(self.model_file, self.root / name))

    def checkpoint(self, name: str = "best.pt") -> Path:
        assert self.checkpoint_file is not None
        return Path(shutil.copy(self.checkpoint_file, self.root / name))

    def mount(self, name: str, options: str) -> Path:
        """A tmpfs at root/name: a small or read-only disk. Root only; elsewhere the case is skipped."""
        folder = self.root / name
        folder.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a small or read-only disk needs root and mount (a tmpfs)")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"mount -t tmpfs failed here: {done.stderr.decode().strip()}")
        self.mounts.append(folder)
        return folder

    def read_only(self, name: str) -> Path:
        if os.geteuid() != 0:  # an ordinary user: a folder without write permission is read-only
            folder = self.root / name
            folder.mkdir(mode=0o555)
            return folder
        return self.mount(name, "ro,size=1m")


@dataclass(frozen=True)
class Fault:
    id: str
    what: str  # the bad input or fault
    command: str  # run in the case's folder, as shown
    message: str  # the one line on stderr; `…` is any text
    intact: str  # what must stay as it was (besides every file that existed before)
    setup: Callable[[Kit], None]
    exit_code: int = 1
    uses: str = "model"  # "model": the session's export; "checkpoint": its checkpoint too (PyTorch runs);
    #                      "detection": a scene + detection export (tests/conftest.py's detection_model) as the model
    send: int | None = None  # a signal sent once `ready` holds
    ready: Callable[[Path], bool] | None = None
    after: Callable[[Path, str], None] | None = None  # a further check of the folder, given stdout
    environment: tuple[tuple[str, str | None], ...] = ()  # changed variables (None: unset)


FAULTS: list[Fault] = []


def fault(id: str, what: str, command: str, message: str, intact: str = "", **options) -> Callable:
    """Register the decorated setup function as a row of the table."""

    def register(setup: Callable[[Kit], None]) -> Callable[[Kit], None]:
        FAULTS.append(Fault(id, what, command, message, intact, setup, **options))
        return setup

    return register


def nothing(kit: Kit) -> None:
    """No files: the fault is in the command line itself."""


def clip(kit: Kit, name: str = "clip.avi", count: int = 20) -> None:
    write_mjpeg_avi(kit.root / name, count)


def photo(kit: Kit) -> None:
    kit.model()
    write_images(kit.root, 1, prefix="photo")
    (kit.root / "photo_0.png").rename(kit.root / "photo.png")


def doctored(changes: Callable[[dict], dict[str, str | None]], name: str) -> Callable[[Kit], None]:
    """Setup: a copy of the export, `name`, with metadata changed by `changes(current metadata)`."""

    def setup(kit: Kit) -> None:
        import onnx

        source = kit.model("original.onnx")
        current = {p.key.removeprefix("edgemtl."): p.value for p in onnx.load(str(source)).metadata_props}
        doctor_metadata(source, kit.root / name, changes(current))
        source.unlink()
        write_images(kit.root, 1, prefix="photo")

    return setup


def tasks_with_scene_classes(current: dict, classes: list[str]) -> dict[str, str]:
    tasks = json.loads(current["tasks"])
    tasks[0]["classes"] = classes
    tasks[0]["extra"] = {}
    return {"tasks": json.dumps(tasks)}


def input_changed(current: dict, **values: object) -> dict[str, str]:
    return {"input": json.dumps({**json.loads(current["input"]), **values})}


def plays_with_every_frame(name: str) -> Callable[[Path, str], None]:
    def check(root: Path, stdout: str) -> None:
        line = (root / "stderr.txt").read_text() if (root / "stderr.txt").exists() else ""
        found = re.search(r"stopped after (\d+) frames", line) or re.search(r"^stopped: (\d+) frames", stdout, re.M)
        assert found, (stdout, line)
        written = int(found.group(1))
        assert written > 0 and count_frames(root / name) == written, "finalized, holding every frame written"

    return check
