"""Frame sources behind one URI syntax: an image, a folder, a glob, a video file, a camera or a stream.

`open_source("clip.mp4")`, `open_source("frames/*.png")`, `open_source("0")`. Every source yields
`Frame`s in order and ends by itself; it reports its frame rate when it has one.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemtl.errors import SourceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://")


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, from 0
    name: str  # file stem for images; "<video stem>_<index>" for video frames
    image: np.ndarray  # (H, W, 3) uint8 BGR


class FrameSource:
    """Iterate to get frames; `close()` (or a `with` block) releases files and devices."""

    uri: str
    fps: float | None = None  # frames per second when the source has a rate (video, camera)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_image(path: Path) -> np.ndarray:
    """A BGR uint8 image, or a SourceError naming the file (cv2.imread returns None silently)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot read image {path}: expected a readable {', '.join(IMAGE_SUFFIXES)} file")
    return image


class ImageSource(FrameSource):
    """A fixed list of image files, read lazily so a large folder starts at once."""

    def __init__(self, uri: str, paths: list[Path]) -> None:
        if not paths:
            raise SourceError(f"source {uri!r} holds no images: expected files ending in {', '.join(IMAGE_SUFFIXES)}")
        self.uri = uri
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            yield Frame(index, path.stem, read_image(path))


class VideoSource(FrameSource):
    """Anything OpenCV's VideoCapture opens: a video file, a camera index or device, a stream URL."""

    def __init__(self, uri: str, target: str | int) -> None:
        self.uri = uri
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            raise SourceError(
                f"cannot open video source {uri!r}: expected a video file, camera or stream that OpenCV can read"
            )
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.stem = Path(uri).stem if isinstance(target, str) else f"camera{target}"

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            ok, image = self.capture.read()
            if not ok:
                return
            yield Frame(index, f"{self.stem}_{index:06d}", image)
            index += 1

    def close(self) -> None:
        self.capture.release()


def open_source(uri: str | Path) -> FrameSource:
    """Pick the source from the URI's shape; unknown or missing things fail here, before any work."""
    text = str(uri)
    if text.isdigit():
        return VideoSource(text, int(text))
    if text.startswith(STREAM_SCHEMES) or text.startswith("/dev/video"):
        return VideoSource(text, text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(
            f"source {text!r} has unknown scheme {scheme!r}: expected rtsp, rtmp, http(s), a path or a camera index"
        )
    if glob.has_magic(text):
        paths = sorted(Path(p) for p in glob.glob(text) if p.lower().endswith(IMAGE_SUFFIXES))
        return ImageSource(text, paths)
    path = Path(text)
    if path.is_dir():
        return ImageSource(text, sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
    if not path.exists():
        raise SourceError(
            f"source {text!r} does not exist: expected an image, folder, glob, video, camera index or stream URL"
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(text, [path])
    return VideoSource(text, text)
