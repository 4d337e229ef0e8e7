"""Where annotated frames go, behind one URI syntax: `display`, a video file, a folder of images, `none`,
a web viewer (`http://HOST:PORT`, edgemtl.runtime.viewer) or an MCAP recording (`run.mcap`,
edgemtl.runtime.recording); those two import their libraries (aiohttp, mcap) only when asked for.

Sinks open lazily on the first frame (its size decides the video's size) and always finalize in
`close()`, which a `with` block guarantees even when the run is interrupted, so the file plays.
A path that cannot be written fails in `open_output`, before any work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgemtl.errors import OutputError
from edgemtl.runtime.closing import Closing
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sources import Frame

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
DISPLAY, NO_OUTPUT = "display", "none"
_ESCAPE = 27


class FrameSink(Closing):
    """`write()` annotated frames; `stop_requested` turns true when the viewer asked to stop (a window's q).
    `close()` finalizes what was written (a `with` block calls it)."""

    stop_requested = False

    def write(self, image: np.ndarray, name: str) -> None:
        raise NotImplementedError

    def write_result(self, image: np.ndarray, frame: Frame, prediction: Prediction, live: dict[str, float]) -> None:
        """What the pipeline calls: the overlay `image` with what it shows — the captured `frame`, its
        `prediction`, and the live statistics (`live`: fps, latency_p50_ms, latency_p99_ms, dropped, frames).
        A sink that wants more than the picture (the viewer, a recording) overrides this. All of it is valid
        only during the call: `image` is the overlay's reused buffer, and the frame's image and the
        prediction's arrays go back to the pipeline's `BufferPool` after it; copy what you keep."""
        self.write(image, frame.name)

    def wants_image(self) -> bool:
        """Whether this frame's overlay will be used: when not (`-o none`, a viewer nobody watches or that
        was sent a frame just now), the pipeline skips drawing it and passes the captured frame as `image`."""
        return True


class VideoFileSink(FrameSink):
    """A video file that stays playable: it is finalized on close, and a disk filling up stops it in time.

    OpenCV's writer cannot report a failed write (it logs "Failed to write frame" and carries on), and an
    MP4 whose disk filled before its index was written plays nothing at all. So a recording stops, with an
    OutputError, while `reserve_bytes` (room for the index and the encoder's buffers) are still free, and
    `close()` opens the finished file again: a file that does not decode, or holds fewer frames than were
    written, is an OutputError naming it and why.
    """

    reserve_bytes = 16 << 20  # room kept free for what finalizing writes (index ~20 B a frame) and buffers

    def __init__(self, path: Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise OutputError(
                f"video output {self.path} has an unknown extension: expected one of {', '.join(VIDEO_CODECS)}"
            )
        _check_writable_folder(self.path.parent, f"video {self.path}")
        self.fourcc = cv2.VideoWriter_fourcc(*codec)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None  # (height, width)
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "") -> None:
        size = image.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), self.fourcc, self.fps, (size[1], size[0]))
            if not self.writer.isOpened():
                self.writer = None
                why = _why(self.path)
                raise OutputError(f"cannot write video {self.path}: OpenCV could not open it for writing{why}")
            self.size = size
        elif size != self.size:
            raise OutputError(
                f"frame {name or self.frames} is {size[0]}x{size[1]} but video {self.path} is "
                f"{self.size[0]}x{self.size[1]} (height x width): a video keeps one frame size"
            )
        free = free_bytes(self.path.parent)
        if free < self.reserve_bytes + 32 * self.frames:
            self.close()  # finalized while there is room for it: what was written stays playable
            raise OutputError(
                f"no space left on device writing {self.path}: stopped after {self.frames} frames with "
                f"{free / 2**20:.1f} MiB free, so the file stays playable"
            )
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        found = decodable_frames(self.path)
        if found is None or found < self.frames - 1:  # a container's count can be one off
            what = "no decodable frame" if found is None else f"{found} decodable frames"
            raise OutputError(
                f"video {self.path} holds {what} of the {self.frames} written: the writes failed{_why(self.path)}"
            )


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use in `folder`'s file system."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def decodable_frames(path: Path) -> int | None:
    """The frame count a finished video's container reports (its first frame decoded), or None when the
    file does not open or decode: how a failed write that OpenCV did not report is found."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened() or not capture.read()[0]:
            return None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return count if count > 0 else 1
    finally:
        capture.release()


def _why(path: Path) -> str:
    """The likely OS reason a write into `path` failed, as ' (reason)', or '' when none shows."""
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        return f" ({path} is not a regular file but {target})"
    try:
        if free_bytes(path.parent) < (1 << 20):
            return f" ({os.strerror(errno.ENOSPC)})"
    except OSError as exc:
        return f" ({exc.strerror})"
    if not os.access(path.parent, os.W_OK):
        return f" ({os.strerror(errno.EACCES)})"
    return ""


class ImageFolderSink(FrameSink):
    def __init__(self, folder: Path, suffix: str = ".png") -> None:
        self.folder = Path(folder)
        self.suffix = suffix
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.folder}: {exc.strerror}") from None
        _check_writable_folder(self.folder, f"images in {self.folder}")

    def write(self, image: np.ndarray, name: str) -> None:
        """Encoded here and written with Python's I/O, so a failure says why (cv2.imwrite only says False),
        and a full disk leaves an earlier image of that name as it was."""
        path = self.folder / f"{name}{self.suffix}"
        ok, encoded = cv2.imencode(self.suffix, image)
        if not ok:
            raise OutputError(f"cannot write image {path}: OpenCV cannot encode a {image.shape} frame as {self.suffix}")
        partial = path.with_name(f".{path.name}.partial")  # renamed into place: no half-written image, ever
        try:
            partial.write_bytes(encoded.tobytes())
            os.replace(partial, path)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise OutputError(f"cannot write image {path}: {exc.strerror or exc}") from None


class NullSink(FrameSink):
    """Discards frames: when only the results, the log and the summary matter (`-o none`), so nothing is
    drawn either. `draw=True` has the overlay drawn all the same, for benchmarks that time that stage too."""

    def __init__(self, draw: bool = False) -> None:
        self.draw = draw

    def write(self, image: np.ndarray, name: str = "") -> None:
        """Nothing to do."""

    def wants_image(self) -> bool:
        return self.draw


def _check_writable_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"cannot write {what}: {folder} {reason}")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write {what}: folder {folder} is not writable")


def display_problem() -> str | None:
    """Why no window can be shown here, or None. Checked before opening one: OpenCV's Qt backend
    aborts the whole process when it finds no display, so the last check runs in a child process."""
    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() == "NONE":
        return (
            f"this OpenCV ({cv2.__version__}) was built without a GUI backend (GTK, Qt, Win32 or Cocoa), "
            "e.g. opencv-python-headless: install opencv-python"
        )
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display: DISPLAY and WAYLAND_DISPLAY are unset (a headless machine, or ssh without -X)"
    probe = "import cv2; cv2.namedWindow('edgemtl'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "opening a test window did not finish within 20 s"
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[0]
        return f"OpenCV could not open a test window ({first})"
    return None


class DisplaySink(FrameSink):
    """An OpenCV window. Pressing q or Esc, or closing the window, sets `stop_requested`."""

    def __init__(self, title: str = "edgemtl") -> None:
        problem = display_problem()
        if problem:
            raise OutputError(f"output 'display' cannot open a window: {problem}; write to a file instead")
        self.title = title
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "") -> None:
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        self.frames += 1
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), _ESCAPE) or closed:
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyWindow(self.title)


@contextlib.contextmanager
def _needs_extra(extra: str, what: str) -> Iterator[None]:
    """An optional output's library missing from a runtime-only install (`pip install .`): one line naming the
    extra that brings it, instead of an import traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "edgemtl":
            raise
        raise OutputError(f"{what} needs {missing}, from an extra: pip install 'edgemtl[{extra}]'") from None


def open_output(
    uri: str | Path, *, fps: float | None = None, overwrite: bool = False, token: str | None = None
) -> FrameSink:
    """`display`, `none`, a video file (.mp4, .avi, .mkv), a folder of images, `http://HOST:PORT` (a web
    viewer; `token` required off loopback) or a `.mcap` recording; checked (a port bound) before any work.

    A file that exists is kept unless `overwrite`; `fps` is the rate written into a video's header.
    """
    text = str(uri)
    if text == DISPLAY:
        return DisplaySink()
    if text in (NO_OUTPUT, ""):
        return NullSink()
    if text.startswith("http://"):
        with _needs_extra("viewer", f"output {text} (the web viewer)"):
            from edgemtl.runtime.viewer import open_viewer
        return open_viewer(text, token=token)
    if "://" in text:
        raise OutputError(
            f"output {text!r} has an unknown scheme: expected display, none, http://HOST:PORT, a video file, "
            "a .mcap file or a folder"
        )
    path = Path(text)
    if path.suffix.lower() == ".mcap":
        with _needs_extra("mcap", f"output {path} (an MCAP recording)"):
            from edgemtl.runtime.recording import McapSink
        return McapSink(path, overwrite=overwrite)
    if path.suffix.lower() in VIDEO_CODECS:
        if path.exists() and not overwrite:
            raise OutputError(f"output {path} exists: choose another name, or allow overwriting it")
        return VideoFileSink(path, fps=fps or 30.0)
    if path.suffix and not path.is_dir():
        raise OutputError(
            f"output {path} has extension {path.suffix!r}: expected display, none, http://HOST:PORT, a video file "
            f"({', '.join(VIDEO_CODECS)}), a .mcap recording or a folder (a name without an extension)"
        )
    return ImageFolderSink(path)
