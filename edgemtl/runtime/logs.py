"""OpenCV's and FFmpeg's own logging kept off stderr, so a user reads edgemtl's one line and nothing else.

OpenCV prints probe lines when a camera does not open (V4L2, obsensor) and "Failed to write frame" when a
video write fails; FFmpeg prints "moov atom not found" for a broken MP4. edgemtl finds each of these
itself and says so in an error naming the file, so their lines only repeat it, less clearly. The CLI
quiets them unless `-v` is given; a script embedding the runtime calls `quiet_libraries()` if it wants.
"""

from __future__ import annotations

import os

import cv2

FFMPEG_QUIET = "-8"  # AV_LOG_QUIET


def quiet_libraries() -> None:
    """Silence OpenCV's logging now, and FFmpeg's for the videos opened from now on.

    OpenCV reads OPENCV_FFMPEG_LOGLEVEL when it first opens a video, so call this before that; a value the
    user set in the environment is kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
