"""Fault cases of the runtime: sources, results and steady decisions, outputs."""

from __future__ import annotations

import contextlib

import cv2
import numpy as np

from tests.cli.fault_kit import (
    Kit,
    clip,
    fault,
    photo,
    plays_with_every_frame,
)
from tests.helpers import (
    truncate,
    write_mjpeg_avi,
)

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
    clip(kit)


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

fault(
    "track-no-boxes",
    "--track on a model without a detection task",
    "edgemtl camera clip.avi -m model.onnx -o none --track",
    "Error: --track needs a detection task, and model.onnx has none (scene (classification), segmentation "
    "(segmentation)): export a model with a detection task, or leave --track out",
)(_model_and_clip)

fault(
    "smooth-object-class-unknown",
    "a smoothing spec latching an object class the detection task does not have",
    "edgemtl camera clip.avi -m model.onnx -o none --smooth obstacles:latch=person:5",
    "Error: smoothing of task 'obstacles' latches 'person', which is not one of its class names: expected one of "
    "box, blob, cone",
    uses="detection",
)(_model_and_clip)

fault(
    "track-unknown",
    "an unknown tracker",
    "edgemtl camera clip.avi -m model.onnx -o none --track deepsort",
    "Error: tracker 'deepsort' is not known: expected one of bytetrack, ocsort",
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
    clip(kit)
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
    clip(kit)


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
    clip(kit)


@fault(
    "viewer-bad-address",
    "a web viewer address without a port",
    "edgemtl camera clip.avi -m model.onnx -o http://127.0.0.1",
    "Error: output 'http://127.0.0.1' is not a viewer address: expected http://HOST:PORT, e.g. http://127.0.0.1:8080",
)
def _(kit: Kit) -> None:
    kit.model()
    clip(kit)


@fault(
    "mcap-no-folder",
    "an MCAP recording into a folder that does not exist",
    "edgemtl camera clip.avi -m model.onnx -o gone/run.mcap",
    "Error: cannot write MCAP recording gone/run.mcap: No such file or directory: expected a writable file path",
)
def _(kit: Kit) -> None:
    kit.model()
    clip(kit)


@fault(
    "output-no-folder",
    "a video into a folder that does not exist",
    "edgemtl camera clip.avi -m model.onnx -o gone/out.mp4",
    "Error: cannot write video gone/out.mp4: gone does not exist",
)
def _(kit: Kit) -> None:
    kit.model()
    clip(kit)


@fault(
    "output-display-headless",
    "a window on a machine without a display",
    "edgemtl camera clip.avi -m model.onnx -o display",
    "Error: output 'display' cannot open a window: …; write to a file instead",
    environment=(("DISPLAY", None), ("WAYLAND_DISPLAY", None)),
)
def _(kit: Kit) -> None:
    kit.model()
    clip(kit)


@fault(
    "output-read-only",
    "a video into a read-only folder",
    "edgemtl camera clip.avi -m model.onnx -o ro/out.mp4",
    "Error: cannot write video ro/out.mp4: folder ro is not writable",
)
def _(kit: Kit) -> None:
    kit.model()
    clip(kit)
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
    clip(kit)
    (kit.root / "full.avi").symlink_to("/dev/full")


@fault(
    "output-disk-full",
    "a recording onto a disk that fills up",
    "edgemtl camera noise.avi -m model.onnx -o disk/out.mp4",
    "Error: no space left on device writing disk/out.mp4: stopped after … frames with … MiB free, so the file "
    "stays playable",
    "out.mp4 plays, with every frame written",
    after=plays_with_every_frame("disk/out.mp4"),
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
    photo(kit)
    disk = kit.mount("disk", "size=64k")
    with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):  # folders, empty files still fit
        filler.write(b"\0" * (64 << 10))
