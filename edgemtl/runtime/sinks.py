"""Where annotated frames go: a video file or a folder of images.

Sinks open lazily on the first frame (its size decides the video's size) and always finalize in
`close()`, which a `with` block guarantees even when the run is interrupted, so the file plays.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgemtl.errors import OutputError

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class FrameSink:
    def write(self, image: np.ndarray, name: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to finalize by default."""

    def __enter__(self) -> FrameSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class VideoFileSink(FrameSink):
    def __init__(self, path: Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise OutputError(
                f"video output {self.path} has an unknown extension: expected one of {', '.join(VIDEO_CODECS)}"
            )
        if not self.path.parent.is_dir():
            raise OutputError(f"cannot write video {self.path}: folder {self.path.parent} does not exist")
        self.fourcc = cv2.VideoWriter_fourcc(*codec)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None  # (width, height)
        self.frames = 0

    def write(self, image: np.ndarray, name: str = "") -> None:
        size = (image.shape[1], image.shape[0])
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), self.fourcc, self.fps, size)
            if not self.writer.isOpened():
                raise OutputError(f"cannot write video {self.path}: OpenCV could not open it for writing")
            self.size = size
        elif size != self.size:
            raise OutputError(
                f"frame {name or self.frames} is {size[0]}x{size[1]} but video {self.path} is "
                f"{self.size[0]}x{self.size[1]}: a video keeps one frame size"
            )
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class ImageFolderSink(FrameSink):
    def __init__(self, folder: Path, suffix: str = ".png") -> None:
        self.folder = Path(folder)
        self.suffix = suffix
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder {self.folder}: {exc.strerror}") from None

    def write(self, image: np.ndarray, name: str) -> None:
        path = self.folder / f"{name}{self.suffix}"
        if not cv2.imwrite(str(path), image):
            raise OutputError(f"cannot write image {path}")
