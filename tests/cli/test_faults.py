"""The fault table: bad inputs and faults a hostile user meets edgemtl with, each run as that user would.

Every case runs the `edgemtl` console script in a child process (so stderr is the real file descriptor 2,
OpenCV's and FFmpeg's C-level lines included) with default signal dispositions, in a folder of its own, and
holds it to one contract: exit code as listed (never 0), stderr exactly one line matching the listed
message (`…` stands for any text), no traceback, and every file that existed before byte for byte as it was.

docs/faults.md is this table, rendered: `python -m tests.cli.test_faults > docs/faults.md` writes it, and
`test_the_doc_is_the_table` fails when the two differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import (
    copy_metadata,
    count_frames,
    doctor_metadata,
    popen_edgemtl,
    snapshot,
    truncate,
    write_external_data_onnx,
    write_foreign_onnx,
    write_images,
    write_mjpeg_avi,
)

DOC = Path(__file__).parents[2] / "docs" / "faults.md"


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
    uses: str = "model"  # "model": the session's export; "checkpoint": its checkpoint too (PyTorch runs)
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


def _clip(kit: Kit, name: str = "clip.avi", count: int = 20) -> None:
    write_mjpeg_avi(kit.root / name, count)


def _photo(kit: Kit) -> None:
    kit.model()
    write_images(kit.root, 1, prefix="photo")
    (kit.root / "photo_0.png").rename(kit.root / "photo.png")


def _doctored(changes: Callable[[dict], dict[str, str | None]], name: str) -> Callable[[Kit], None]:
    """Setup: a copy of the export, `name`, with metadata changed by `changes(current metadata)`."""

    def setup(kit: Kit) -> None:
        import onnx

        source = kit.model("original.onnx")
        current = {p.key.removeprefix("edgemtl."): p.value for p in onnx.load(str(source)).metadata_props}
        doctor_metadata(source, kit.root / name, changes(current))
        source.unlink()
        write_images(kit.root, 1, prefix="photo")

    return setup


def _tasks_with_scene_classes(current: dict, classes: list[str]) -> dict[str, str]:
    tasks = json.loads(current["tasks"])
    tasks[0]["classes"] = classes
    tasks[0]["extra"] = {}
    return {"tasks": json.dumps(tasks)}


def _input_changed(current: dict, **values: object) -> dict[str, str]:
    return {"input": json.dumps({**json.loads(current["input"]), **values})}


# --- model files ------------------------------------------------------------------------------------------

fault(
    "model-missing",
    "a model file that does not exist",
    "edgemtl info missing.onnx",
    "Error: model file missing.onnx does not exist: expected an .onnx file written by `edgemtl export`",
)(nothing)


@fault(
    "model-folder",
    "a folder where the model file should be",
    "edgemtl info folder.onnx",
    "Error: model file folder.onnx is a folder: expected an .onnx file written by `edgemtl export`",
    "the folder and its contents",
)
def _(kit: Kit) -> None:
    (kit.root / "folder.onnx").mkdir()
    (kit.root / "folder.onnx" / "keep.txt").write_text("mine\n")


@fault(
    "model-empty",
    "an empty model file (0 bytes)",
    "edgemtl info empty.onnx",
    "Error: empty.onnx is not a loadable ONNX model (…)",
    "the file",
)
def _(kit: Kit) -> None:
    (kit.root / "empty.onnx").write_bytes(b"")


@fault(
    "model-garbage",
    "random bytes named .onnx",
    "edgemtl predict photo.png -m garbage.onnx -o out",
    "Error: garbage.onnx is not a loadable ONNX model (…)",
    "the file, the image",
)
def _(kit: Kit) -> None:
    _photo(kit)
    (kit.root / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(4096))


@fault(
    "model-truncated",
    "an export cut in half (an interrupted copy)",
    "edgemtl camera clip.avi -m half.onnx -o none",
    "Error: half.onnx is not a loadable ONNX model (…)",
    "the file",
)
def _(kit: Kit) -> None:
    truncate(kit.model("half.onnx"), 0.5)
    _clip(kit)


@fault(
    "model-foreign",
    "a valid ONNX model edgemtl did not write",
    "edgemtl predict photo.png -m foreign.onnx -o out",
    "Error: foreign.onnx is an ONNX model but not an edgemtl export (no edgemtl.format metadata): …",
)
def _(kit: Kit) -> None:
    _photo(kit)
    write_foreign_onnx(kit.root / "foreign.onnx")


fault(
    "meta-more-classes",
    "metadata naming 5 classes where the graph gives 4",
    "edgemtl predict photo_0.png -m five.onnx -o out",
    "Error: five.onnx: metadata outputs.scene.probs is 'scene_probs', a graph output of shape ['batch', 4]: "
    "the metadata's task 'scene' has 5 classes (left, straight, right, blocked, reverse)",
)(_doctored(lambda m: _tasks_with_scene_classes(m, ["left", "straight", "right", "blocked", "reverse"]), "five.onnx"))

fault(
    "meta-fewer-classes",
    "metadata naming 3 classes where the graph gives 4",
    "edgemtl predict photo_0.png -m three.onnx -o out",
    "Error: three.onnx: metadata outputs.scene.probs is 'scene_probs', a graph output of shape ['batch', 4]: "
    "the metadata's task 'scene' has 3 classes (left, straight, right)",
)(_doctored(lambda m: _tasks_with_scene_classes(m, ["left", "straight", "right"]), "three.onnx"))


def _renamed_output(current: dict) -> dict[str, str]:
    outputs = json.loads(current["outputs"])
    outputs["scene"]["probs"] = "scene_probabilities"
    return {"outputs": json.dumps(outputs)}


fault(
    "meta-missing-output",
    "metadata naming an output the graph lacks",
    "edgemtl predict photo_0.png -m renamed.onnx -o out",
    "Error: renamed.onnx: metadata outputs.scene.probs is 'scene_probabilities', which the graph lacks "
    "(its outputs: scene_probs, scene_label, segmentation_mask)",
)(_doctored(_renamed_output, "renamed.onnx"))

fault(
    "meta-input-size",
    "metadata input size 64 on a graph taking 32",
    "edgemtl info size64.onnx",
    "Error: size64.onnx: metadata input.height is 64, graph input 'frames' has 32",
)(_doctored(lambda m: _input_changed(m, height=64, width=64), "size64.onnx"))

fault(
    "meta-input-dtype",
    "metadata saying the input is float32",
    "edgemtl info float.onnx",
    "Error: float.onnx: metadata input.dtype is float32, graph input 'frames' is uint8: the Engine feeds uint8 frames",
)(_doctored(lambda m: _input_changed(m, dtype="float32"), "float.onnx"))


def _task_without_outputs(current: dict) -> dict[str, str]:
    outputs = json.loads(current["outputs"])
    outputs["segmentation"] = {}
    return {"outputs": json.dumps(outputs)}


fault(
    "meta-output-missing-field",
    "metadata naming no mask output for a segmentation task",
    "edgemtl info nomask.onnx",
    "Error: nomask.onnx: metadata outputs.segmentation names no output for mask: a segmentation task has mask",
)(_doctored(_task_without_outputs, "nomask.onnx"))


@fault(
    "meta-on-foreign-graph",
    "a foreign graph carrying an export's edgemtl metadata",
    "edgemtl info disguised.onnx",
    "Error: disguised.onnx: metadata input.name is 'frames', the graph's inputs are ['x']",
)
def _(kit: Kit) -> None:
    copy_metadata(kit.model_file, write_foreign_onnx(kit.root / "disguised.onnx"))


fault(
    "meta-bad-json",
    "metadata that is not JSON",
    "edgemtl info broken.onnx",
    "Error: broken.onnx metadata edgemtl.outputs is not valid JSON (…): re-export the model",
)(_doctored(lambda m: {"outputs": "{scene: probs"}, "broken.onnx"))

fault(
    "meta-unknown-kind",
    "a task of a kind edgemtl does not know",
    "edgemtl info kind.onnx",
    "Error: kind.onnx metadata edgemtl.tasks: …'detection'…",
)(_doctored(lambda m: {"tasks": m["tasks"].replace('"classification"', '"detection"')}, "kind.onnx"))

fault(
    "meta-missing-key",
    "metadata without its input description",
    "edgemtl info noinput.onnx",
    "Error: noinput.onnx has damaged edgemtl metadata: edgemtl.input is missing",
)(_doctored(lambda m: {"input": None}, "noinput.onnx"))

fault(
    "meta-huge",
    "a 3 MB metadata value",
    "edgemtl info huge.onnx",
    "Error: huge.onnx metadata edgemtl.extra is 3000002 characters: refused above 1048576 (edgemtl writes kB)",
)(_doctored(lambda m: {"extra": json.dumps("x" * 3_000_000)}, "huge.onnx"))

fault(
    "meta-deep",
    "metadata JSON nested 100 000 levels deep",
    "edgemtl info deep.onnx",
    "Error: deep.onnx metadata edgemtl.metrics nests 100000 levels deep: refused above 32",
)(_doctored(lambda m: {"metrics": "[" * 100_000 + "]" * 100_000}, "deep.onnx"))

fault(
    "meta-version",
    "an export of a future format version",
    "edgemtl info future.onnx",
    "Error: future.onnx has edgemtl format version 99: this edgemtl reads version 1; re-export it with this version",
)(_doctored(lambda m: {"format_version": "99"}, "future.onnx"))


@fault(
    "external-data-parent",
    "a weight stored in ../secret.bin, outside the model's folder",
    "edgemtl info models/model.onnx",
    "Error: models/model.onnx refers to external data '../secret.bin' outside its folder …: refused, a model "
    "file may only read data beside it",
    "secret.bin is never read",
)
def _(kit: Kit) -> None:
    (kit.root / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    write_external_data_onnx(kit.root / "models" / "model.onnx", "../secret.bin")


@fault(
    "external-data-absolute",
    "a weight stored at an absolute path (/etc/passwd)",
    "edgemtl info passwd.onnx",
    "Error: passwd.onnx refers to external data '/etc/passwd' outside its folder …: refused, a model file may only "
    "read data beside it",
)
def _(kit: Kit) -> None:
    write_external_data_onnx(kit.root / "passwd.onnx", "/etc/passwd")


# --- sources ------------------------------------------------------------------------------------------------


@fault(
    "image-empty",
    "an image file of 0 bytes",
    "edgemtl predict blank.png -m model.onnx -o out",
    "Error: cannot read image blank.png: expected a readable .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp file",
)
def _(kit: Kit) -> None:
    kit.model()
    (kit.root / "blank.png").write_bytes(b"")


@fault(
    "image-not-an-image",
    "a text file named .jpg",
    "edgemtl predict notes.jpg -m model.onnx -o out",
    "Error: cannot read image notes.jpg: expected a readable …",
)
def _(kit: Kit) -> None:
    kit.model()
    (kit.root / "notes.jpg").write_text("not a picture\n")


fault(
    "source-missing",
    "a source that does not exist",
    "edgemtl predict nowhere/ -m model.onnx -o out",
    "Error: source 'nowhere/' does not exist: expected an image, folder, glob, video, camera index or stream URL",
)(lambda kit: kit.model())


@fault(
    "folder-only-hidden",
    "a folder holding only hidden files (macOS ._frame.png forks)",
    "edgemtl predict frames -m model.onnx -o out",
    "Error: source 'frames' holds no images: expected files ending in …",
    "the hidden files",
)
def _(kit: Kit) -> None:
    kit.model()
    (kit.root / "frames").mkdir()
    (kit.root / "frames" / "._frame.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")


@fault(
    "video-garbage",
    "random bytes named .mp4 (FFmpeg: moov atom not found)",
    "edgemtl predict clip.mp4 -m model.onnx -o out",
    "Error: cannot open video source 'clip.mp4': expected a video file, camera or stream that OpenCV can read",
)
def _(kit: Kit) -> None:
    kit.model()
    (kit.root / "clip.mp4").write_bytes(np.random.default_rng(1).bytes(3000))


@fault(
    "video-truncated",
    "a video cut off mid-file",
    "edgemtl predict clip.avi -m model.onnx -o out",
    "Error: video 'clip.avi' ended after … of 40 frames: the file is truncated or corrupt",
    "the video",
)
def _(kit: Kit) -> None:
    kit.model()
    truncate(write_mjpeg_avi(kit.root / "clip.avi", 40), 0.5)


fault(
    "camera-missing",
    "a camera device that is not there (V4L2 probe lines)",
    "edgemtl camera /dev/video97 -m model.onnx -o none",
    "Error: cannot open video source '/dev/video97': expected a video file, camera or stream that OpenCV can read",
)(lambda kit: kit.model())

fault(
    "camera-index-missing",
    "a camera index with no camera (obsensor probe lines)",
    "edgemtl camera 7 -m model.onnx -o none",
    "Error: cannot open video source '7': expected a video file, camera or stream that OpenCV can read",
)(lambda kit: kit.model())

fault(
    "stream-refused",
    "a stream whose server refuses the connection",
    "edgemtl camera rtsp://127.0.0.1:9/cam -m model.onnx -o none",
    "Error: cannot open video source 'rtsp://127.0.0.1:9/cam': no answer within 5 s or not a stream OpenCV can decode",
)(lambda kit: kit.model())

fault(
    "scheme-unknown",
    "a source of an unknown scheme",
    "edgemtl camera ftp://host/cam -m model.onnx -o none",
    "Error: source 'ftp://host/cam' has unknown scheme 'ftp': expected rtsp, rtmp, http(s), a path or a camera index",
)(lambda kit: kit.model())


# --- results to a controller and steady decisions ------------------------------------------------------------


def _model_and_clip(kit: Kit) -> None:
    kit.model()
    _clip(kit)


fault(
    "results-scheme-unknown",
    "a results sink of an unknown scheme",
    "edgemtl camera clip.avi -m model.onnx -o none --results mqtt://broker:1883",
    "Error: results 'mqtt://broker:1883' has an unknown scheme: expected a file path (.jsonl), - (stdout), "
    "udp://HOST:PORT, zmq://HOST:PORT",
)(_model_and_clip)

fault(
    "smooth-task-unknown",
    "a smoothing spec naming a task the model does not have",
    "edgemtl camera clip.avi -m model.onnx -o none --smooth sceen:ema=0.6",
    "Error: smoothing names task 'sceen', which model.onnx does not have: expected one of scene",
)(_model_and_clip)

fault(
    "smooth-class-unknown",
    "a smoothing spec latching a class the task does not have",
    "edgemtl camera clip.avi -m model.onnx -o none --smooth scene:dwell=3,latch=blockd:5",
    "Error: smoothing of task 'scene' latches 'blockd', which is not one of its class names: expected one of left, "
    "straight, right, blocked",
)(_model_and_clip)


# --- outputs ------------------------------------------------------------------------------------------------


@fault(
    "output-exists",
    "a recording that exists",
    "edgemtl camera clip.avi -m model.onnx -o old.mp4",
    "Error: output old.mp4 exists: choose another name, or allow overwriting it",
    "old.mp4",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)
    (kit.root / "old.mp4").write_bytes(b"yesterday's recording")


@fault(
    "output-extension",
    "an output of an unknown kind",
    "edgemtl camera clip.avi -m model.onnx -o out.xyz",
    "Error: output out.xyz has extension '.xyz': expected display, none, http://HOST:PORT, a video file "
    "(.mp4, .avi, .mkv), a .mcap recording or a folder (a name without an extension)",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "viewer-no-token",
    "a web viewer on every interface without a token",
    "edgemtl camera clip.avi -m model.onnx -o http://0.0.0.0:18765",
    "Error: output http://0.0.0.0:18765 listens beyond this machine (0.0.0.0) without a token: give --token "
    "SECRET (viewers then open /?token=SECRET), or bind 127.0.0.1",
    environment=(("EDGEMTL_VIEWER_TOKEN", None),),
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "viewer-bad-address",
    "a web viewer address without a port",
    "edgemtl camera clip.avi -m model.onnx -o http://127.0.0.1",
    "Error: output 'http://127.0.0.1' is not a viewer address: expected http://HOST:PORT, e.g. http://127.0.0.1:8080",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "mcap-no-folder",
    "an MCAP recording into a folder that does not exist",
    "edgemtl camera clip.avi -m model.onnx -o gone/run.mcap",
    "Error: cannot write MCAP recording gone/run.mcap: No such file or directory: expected a writable file path",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "output-no-folder",
    "a video into a folder that does not exist",
    "edgemtl camera clip.avi -m model.onnx -o gone/out.mp4",
    "Error: cannot write video gone/out.mp4: gone does not exist",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "output-display-headless",
    "a window on a machine without a display",
    "edgemtl camera clip.avi -m model.onnx -o display",
    "Error: output 'display' cannot open a window: …; write to a file instead",
    environment=(("DISPLAY", None), ("WAYLAND_DISPLAY", None)),
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)


@fault(
    "output-read-only",
    "a video into a read-only folder",
    "edgemtl camera clip.avi -m model.onnx -o ro/out.mp4",
    "Error: cannot write video ro/out.mp4: folder ro is not writable",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)
    kit.read_only("ro")


@fault(
    "output-write-fails",
    "a video whose every write fails (out.avi is a link to /dev/full)",
    "edgemtl camera clip.avi -m model.onnx -o full.avi --overwrite",
    "Error: video full.avi holds no decodable frame of the 20 written: the writes failed (full.avi is not a "
    "regular file but /dev/full)",
)
def _(kit: Kit) -> None:
    kit.model()
    _clip(kit)
    (kit.root / "full.avi").symlink_to("/dev/full")


def _plays_with_every_frame(name: str) -> Callable[[Path, str], None]:
    def check(root: Path, stdout: str) -> None:
        line = (root / "stderr.txt").read_text() if (root / "stderr.txt").exists() else ""
        found = re.search(r"stopped after (\d+) frames", line) or re.search(r"^stopped: (\d+) frames", stdout, re.M)
        assert found, (stdout, line)
        written = int(found.group(1))
        assert written > 0 and count_frames(root / name) == written, "finalized, holding every frame written"

    return check


@fault(
    "output-disk-full",
    "a recording onto a disk that fills up",
    "edgemtl camera noise.avi -m model.onnx -o disk/out.mp4",
    "Error: no space left on device writing disk/out.mp4: stopped after … frames with … MiB free, so the file "
    "stays playable",
    "out.mp4 plays, with every frame written",
    after=_plays_with_every_frame("disk/out.mp4"),
)
def _(kit: Kit) -> None:
    kit.model()
    rng = np.random.default_rng(2)
    writer = cv2.VideoWriter(str(kit.root / "noise.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for _ in range(150):  # noise compresses badly: tens of kB a frame
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    kit.mount("disk", "size=17m")


@fault(
    "image-disk-full",
    "overlays onto a full disk",
    "edgemtl predict photo.png -m model.onnx -o disk/out",
    "Error: cannot write image disk/out/overlays/photo.png: No space left on device",
)
def _(kit: Kit) -> None:
    _photo(kit)
    disk = kit.mount("disk", "size=64k")
    with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):  # folders, empty files still fit
        filler.write(b"\0" * (64 << 10))


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
    after=_plays_with_every_frame("out.mp4"),
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


# --- running the table -----------------------------------------------------------------------------------


def _matches(template: str, line: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in template.split("…")), line) is not None


def _environment(case: Fault) -> dict[str, str]:
    environment = dict(os.environ)
    for name, value in case.environment:
        environment.pop(name, None)
        if value is not None:
            environment[name] = value
    return environment


@pytest.fixture
def kit(request, tmp_path):
    """The case's folder, with the session's export (and checkpoint, for the cases that train or export)."""
    case: Fault = request.node.callspec.params["case"]
    model = request.getfixturevalue("exported_model")
    checkpoint = request.getfixturevalue("trained_run").best_checkpoint if case.uses == "checkpoint" else None
    root = tmp_path / "case"
    root.mkdir()
    made = Kit(root, model, checkpoint, [])
    yield made
    for folder in reversed(made.mounts):
        subprocess.run(["umount", "-l", str(folder)], check=False)
    for folder in root.rglob("*"):  # a read-only folder of an unprivileged user: let pytest clean it up
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)


def _run(case: Fault, root: Path) -> tuple[int, str, str]:
    """The command in `root`, as a user would type it; a signal is sent once the case says it is running."""
    process = popen_edgemtl(shlex.split(case.command)[1:], cwd=root, env=_environment(case))
    try:
        if case.send is not None:
            assert case.ready is not None
            deadline = time.monotonic() + 60
            while not case.ready(root) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.poll() is None, "the command ended before the signal: " + process.stderr.read()
            time.sleep(0.5)  # a few frames or steps more
            process.send_signal(case.send)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("case", FAULTS, ids=[case.id for case in FAULTS])
def test_fault(case: Fault, kit: Kit):
    case.setup(kit)
    before = snapshot(kit.root)
    code, stdout, stderr = _run(case, kit.root)
    assert "Traceback" not in stdout + stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert _matches(case.message, lines[0]), f"\n{lines[0]}\nis not\n{case.message}"
    assert code == case.exit_code != 0, (code, stderr)
    (kit.root / "stderr.txt").write_text(stderr)
    after = snapshot(kit.root)
    changed = [name for name, data in before.items() if after.get(name) != data]
    assert changed == [], f"files that existed before were changed or removed: {changed}"
    if case.after is not None:
        case.after(kit.root, stdout)


def test_the_table_is_large_and_its_ids_unique():
    ids = [case.id for case in FAULTS]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


def render() -> str:
    """docs/faults.md: the table, as a page."""
    lines = [
        "# Bad input and faults",
        "",
        "Every row is a case of `tests/cli/test_faults.py`, which CI runs: the command is run as shown in a folder",
        "holding what the row describes, through the installed `edgemtl` script. Each must print exactly the one",
        "line shown on stderr (`…` stands for any text; nothing from OpenCV, FFmpeg or onnxruntime without `-v`),",
        "exit with the code shown, print no traceback, and leave every file that existed before as it was,",
        "besides what the last column names. Cases that need a small or read-only disk mount a tmpfs, so they",
        "run as root (and are skipped, saying so, elsewhere). This page is generated from the table:",
        "`python -m tests.cli.test_faults > docs/faults.md`.",
        "",
        f"{len(FAULTS)} cases.",
        "",
        "| case | bad input or fault | command | stderr | exit | stays intact |",
        "|---|---|---|---|---|---|",
    ]
    for case in FAULTS:
        cells = [case.id, case.what, f"`{case.command}`", f"`{case.message}`", str(case.exit_code)]
        cells.append(case.intact or "every file there before")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_doc_is_the_table():
    assert DOC.read_text() == render(), "docs/faults.md is stale: python -m tests.cli.test_faults > docs/faults.md"


if __name__ == "__main__":
    sys.stdout.write(render())
