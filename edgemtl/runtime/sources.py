"""Frame sources behind one URI syntax: an image, a folder, a glob, a video file, a camera or a stream.

`open_source("clip.mp4")`, `open_source("frames/*.png")`, `open_source("0")`, `open_source("/dev/video0")`,
`open_source("rtsp://…")`, `open_source("http://…/stream.mjpg")`. `read()` gives the next `Frame`, or None
at the end of the stream; iterating does the same. Every source reports its frame size and rate when
it knows them, and how many frames it dropped.

Files are read in order and nothing is dropped (unless `pace=True` asks for their own frame rate).
Cameras and streams are live: a grabber thread keeps only the newest frame, so a slow consumer always
gets the present, and the stale frames it never saw are counted in `dropped`. Streams that drop are
reopened with a growing pause a bounded number of times, then stop with a SourceError.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemtl.errors import EdgemtlError, SourceError
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.closing import Closing

log = logging.getLogger("edgemtl")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://")
_BACKOFF_S = (0.25, 4.0)  # first pause before reopening a dropped stream, and the cap as it doubles


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, from 0 (a live source's dropped frames take indices too)
    name: str  # file stem for images; "<video stem>_<index>" for video frames
    image: np.ndarray  # (H, W, 3) uint8 BGR
    timestamp: float = 0.0  # time.perf_counter() when captured: latency is measured from here
    prepared: np.ndarray | None = None  # the image resized for a model, when a reader thread did it


class FrameSource(Closing):
    """`read()` (or iterate) to get frames; `close()` (or a `with` block) releases files, devices, threads."""

    uri: str
    fps: float | None = None  # frames per second when the source has a rate (video, camera)
    size: tuple[int, int] | None = None  # (height, width) of its frames once known
    live: bool = False  # frames come in real time, and stale ones are dropped rather than queued
    dropped: int = 0  # frames captured but never returned (live sources only)
    ended: bool = False  # read() has returned None: the end of the stream

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        raise NotImplementedError

    def use_pool(self, pool: BufferPool | None) -> None:
        """Decode into arrays from `pool` where this source can (a video, a camera, a stream); whoever reads
        the frames gives each image back once done with it (a pipeline does, after the frame's output).
        None: new arrays again. Sources that cannot (images, which OpenCV reads into new arrays) ignore it."""

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 image, or a SourceError naming the file (cv2.imread returns None silently)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}: expected a readable {', '.join(IMAGE_SUFFIXES)} file")
    return image


class ImageSource(FrameSource):
    """A fixed list of image files, read lazily so a large folder starts at once; sizes may differ."""

    def __init__(self, uri: str, paths: list[Path]) -> None:
        if not paths:
            raise SourceError(f"source {uri!r} holds no images: expected files ending in {', '.join(IMAGE_SUFFIXES)}")
        self.uri = uri
        self.paths = paths
        self._next = 0

    def __len__(self) -> int:
        return len(self.paths)

    def read(self) -> Frame | None:
        if self._next >= len(self.paths):
            self.ended = True
            return None
        path = self.paths[self._next]
        image = read_image(path)
        self.size = image.shape[:2]
        frame = Frame(self._next, path.stem, image, time.perf_counter())
        self._next += 1
        return frame


class VideoSource(FrameSource):
    """Anything OpenCV's VideoCapture opens: a video file, a camera index or device, a stream URL.

    Frames come in order in the caller's thread. A video file that ends before the frame count its
    header promises is truncated or corrupt: SourceError. A frame whose size differs from the first:
    SourceError. A network stream (`reconnects` > 0) that stops is reopened up to `reconnects` times.

    What the size check can see: OpenCV's FFmpeg backend scales every frame of a stream whose size changes
    to the first size, and keeps reporting that size (OpenCV 5.0: an MJPEG stream going 40x48 → 64x80
    came out 40x48 throughout), so such a change is not detected there: the frames arrive scaled. Backends
    that pass the new size through (V4L2 after a format change, GStreamer) are refused here.
    """

    def __init__(
        self, uri: str, target: str | int, *, pace: bool = False, reconnects: int = 0, timeout_s: float = 5.0
    ) -> None:
        self.uri = uri
        self.target = target
        self.pace = pace
        self.reconnects = reconnects
        self.timeout_s = timeout_s
        self.is_stream = isinstance(target, str) and target.startswith(STREAM_SCHEMES)
        self.capture = self._open()
        if not self.capture.isOpened():
            what = f"no answer within {timeout_s:g} s or not a stream OpenCV can decode" if self.is_stream else ""
            raise SourceError(
                f"cannot open video source {uri!r}: "
                + (what or "expected a video file, camera or stream that OpenCV can read")
            )
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None  # some streams report 90000 (the clock rate)
        height, width = (int(self.capture.get(p)) for p in (cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FRAME_WIDTH))
        self.size = (height, width) if height > 0 and width > 0 else None
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.is_stream and isinstance(target, str) else None
        if isinstance(target, int):
            self.stem = f"camera{target}"
        else:
            self.stem = "stream" if self.is_stream else Path(uri).stem
        self._index = 0
        self._started = 0.0
        self._pool: BufferPool | None = None

    def use_pool(self, pool: BufferPool | None) -> None:
        self._pool = pool

    def _grab(self) -> tuple[bool, np.ndarray | None]:
        """One decoded frame, into a pooled array of the stream's size when there is one (OpenCV writes into
        an array of the right size and type, and makes a new one otherwise)."""
        if self._pool is None or self.size is None:
            return self.capture.read()
        buffer = self._pool.take((*self.size, 3))
        ok, image = self.capture.read(buffer)
        if not ok or image is not buffer:  # the end, or a frame of another size (refused by the caller)
            self._pool.give_back(buffer)
        return ok, image

    def _open(self) -> cv2.VideoCapture:
        if self.is_stream:  # FFmpeg honours open and read timeouts, so a silent server cannot hang us
            milliseconds = int(self.timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds]
            return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        if isinstance(self.target, str) and not _is_camera(self.target):
            # A file: one decoder thread. The pipeline already decodes beside inference; FFmpeg's frame
            # threads on top cost CPU (measured 0.86 vs 0.61 ms per 480x640 MPEG-4 frame on 2 cores).
            capture = cv2.VideoCapture(self.target, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
            if capture.isOpened():
                return capture
        return cv2.VideoCapture(self.target)

    def _reconnect(self) -> bool:
        """Reopen a dropped stream, pausing longer each time; False once `reconnects` attempts failed."""
        pause = _BACKOFF_S[0]
        for attempt in range(1, self.reconnects + 1):
            self.capture.release()
            time.sleep(pause)
            self.capture = self._open()
            if self.capture.isOpened():
                log.warning("source %s dropped; reconnected (attempt %d of %d)", self.uri, attempt, self.reconnects)
                return True
            pause = min(pause * 2, _BACKOFF_S[1])
        return False

    def read(self) -> Frame | None:
        if self.ended:
            return None
        ok, image = self._grab()
        if not ok and self.is_stream and self.reconnects:
            if not self._reconnect():
                raise SourceError(
                    f"stream {self.uri!r} stopped after {self._index} frames and did not come back after "
                    f"{self.reconnects} reconnect attempts"
                )
            ok, image = self._grab()
        if not ok:
            return self._end()
        if self.size is None:
            self.size = image.shape[:2]
        elif image.shape[:2] != self.size:
            raise SourceError(
                f"source {self.uri!r} changed frame size from {self.size[0]}x{self.size[1]} to {image.shape[0]}x"
                f"{image.shape[1]} (height x width) at frame {self._index}: expected one size per stream"
            )
        now = time.perf_counter()
        if self.pace and self.fps:
            if self._index == 0:
                self._started = now
            due = self._started + self._index / self.fps
            if due > now:
                time.sleep(due - now)
                now = due
        frame = Frame(self._index, f"{self.stem}_{self._index:06d}", image, now)
        self._index += 1
        return frame

    def _end(self) -> None:
        """The end of a file; for a camera or a stream, which never end by themselves, an error."""
        self.ended = True
        if self.is_stream:
            raise SourceError(f"stream {self.uri!r} stopped after {self._index} frames")
        if self.frame_count and self._index < self.frame_count - 1:  # the count can be off by one
            raise SourceError(
                f"video {self.uri!r} ended after {self._index} of {self.frame_count} frames: "
                "the file is truncated or corrupt"
            )
        if isinstance(self.target, int) or str(self.target).startswith("/dev/video"):
            raise SourceError(f"camera {self.uri!r} stopped delivering frames after {self._index} (unplugged?)")
        return None

    def close(self) -> None:
        self.capture.release()


class ThreadedSource(FrameSource):
    """Reads another source in a background thread, so decoding overlaps whatever the caller does.

    `drop_stale=True` (live sources): only the newest frame is kept; frames replaced before they were
    read are counted in `dropped`. `drop_stale=False` (files): up to `depth` frames are read ahead and
    nothing is dropped. An error in the thread is raised by the next `read()`, after the frames before it.
    `prepare`, when given, runs on the thread too and its result travels as `Frame.prepared`.
    `arrived`, when given, is set whenever a frame is ready or the thread ends: a reader of several sources
    waits on one event and `poll`s them.
    """

    def __init__(
        self,
        inner: FrameSource,
        *,
        drop_stale: bool,
        depth: int = 2,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
        arrived: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.prepare = prepare
        self.arrived = arrived
        self.uri = inner.uri
        self.fps = inner.fps
        self.live = drop_stale
        self.depth = 1 if drop_stale else depth
        self._pool: BufferPool | None = None
        self._frames: collections.deque[Frame] = collections.deque()
        self._error: EdgemtlError | None = None
        self._done = False
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._grab, name=f"edgemtl-source {self.uri}", daemon=True)
        self._thread.start()

    @property
    def size(self) -> tuple[int, int] | None:  # type: ignore[override]
        return self.inner.size

    def use_pool(self, pool: BufferPool | None) -> None:
        self._pool = pool  # a live source's stale frames go back to it as they are dropped
        self.inner.use_pool(pool)

    def _grab(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.inner.read()
                if frame is None:
                    break
                if self.prepare is not None:
                    frame = dataclasses.replace(frame, prepared=self.prepare(frame.image))
                with self._changed:
                    if self.live and self._frames:
                        self.dropped += len(self._frames)
                        if self._pool is not None:
                            self._pool.give_back(*(a for stale in self._frames for a in (stale.image, stale.prepared)))
                        self._frames.clear()
                    while len(self._frames) >= self.depth and not self._stop.is_set():
                        self._changed.wait(0.1)
                    self._frames.append(frame)
                    self._changed.notify_all()
                if self.arrived is not None:
                    self.arrived.set()
        except EdgemtlError as exc:
            self._error = exc
        except cv2.error as exc:  # a decoder failing outright rather than returning no frame
            self._error = SourceError(f"source {self.uri!r} failed to decode: {str(exc).strip().splitlines()[-1]}")
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()
            if self.arrived is not None:
                self.arrived.set()

    def read(self) -> Frame | None:
        with self._changed:
            while not self._frames and not self._done:
                self._changed.wait(0.25)  # a timeout keeps Ctrl-C responsive in the waiting thread
            if self._frames:
                frame = self._frames.popleft()
                self._changed.notify_all()
                return frame
        if self._error is not None:
            raise self._error
        self.ended = True
        return None

    def poll(self) -> Frame | None:
        """The next frame if one is ready, else None at once (`ended` then tells the end of the stream);
        an error in the thread is raised after the frames before it, as `read` does."""
        with self._changed:
            if self._frames or not self._done:
                return self.read() if self._frames else None
        return self.read()

    def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join()  # bounded: a stream read times out, a file read returns
        self.inner.close()


def image_files(folder: Path) -> list[Path]:
    """The images of a folder, sorted; hidden files (".DS_Store", macOS "._frame.png" forks) are not images."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _is_camera(text: str) -> bool:
    return text.isdigit() or text.startswith("/dev/video")


def open_source(
    uri: str | Path,
    *,
    live: bool | None = None,
    pace: bool = False,
    reconnects: int = 3,
    timeout_s: float = 5.0,
) -> FrameSource:
    """Pick the source from the URI's shape; unknown or missing things fail here, before any work.

    `live`: None picks by kind (cameras and streams are live, files are not); True reads a video file
    as if it were a camera (at its own frame rate, newest frame only), False reads a camera without drops.
    `pace`: read a video file at its own frame rate. `reconnects` and `timeout_s` apply to streams.
    """
    text = str(uri)
    source: FrameSource
    if _is_camera(text):
        source = VideoSource(text, int(text) if text.isdigit() else text, timeout_s=timeout_s)
    elif text.startswith(STREAM_SCHEMES):
        source = VideoSource(text, text, reconnects=reconnects, timeout_s=timeout_s)
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(
            f"source {text!r} has unknown scheme {scheme!r}: expected rtsp, rtmp, http(s), a path or a camera index"
        )
    elif glob.has_magic(text):
        paths = sorted(Path(p) for p in glob.glob(text) if p.lower().endswith(IMAGE_SUFFIXES))
        source = ImageSource(text, paths)
    else:
        path = Path(text)
        if path.is_dir():
            source = ImageSource(text, image_files(path))
        elif not path.exists():
            raise SourceError(
                f"source {text!r} does not exist: expected an image, folder, glob, video, camera index or stream URL"
            )
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            source = ImageSource(text, [path])
        else:
            source = VideoSource(text, text, pace=pace or bool(live))
    is_live = _is_camera(text) or text.startswith(STREAM_SCHEMES) if live is None else live
    return ThreadedSource(source, drop_stale=True) if is_live else source
