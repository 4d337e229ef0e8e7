"""Outputs on a hostile disk: a disk filling up mid-recording, writes that fail without OpenCV saying so,
images that cannot be written, and the reason each time."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from edgemtl.errors import OutputError
from edgemtl.runtime import logs, sinks
from edgemtl.runtime.sinks import ImageFolderSink, VideoFileSink, decodable_frames
from tests.helpers import assert_one_line, count_frames


def _frames(count: int, size: tuple[int, int] = (40, 48)):
    for i in range(count):
        yield np.full((*size, 3), 10 * i % 256, np.uint8)


def test_a_disk_filling_up_stops_the_recording_and_keeps_it_playable(tmp_path, monkeypatch):
    path = tmp_path / "out.mp4"
    room = {"bytes": VideoFileSink.reserve_bytes + 10_000}
    monkeypatch.setattr(sinks, "free_bytes", lambda folder: room["bytes"])
    sink = VideoFileSink(path, fps=10)
    with pytest.raises(OutputError) as error, sink:
        for written, image in enumerate(_frames(50)):
            if written == 12:
                room["bytes"] = VideoFileSink.reserve_bytes - 1  # the disk fills
            sink.write(image)
    assert_one_line(error, "no space left on device writing", str(path), "stopped after 12 frames", "playable")
    assert count_frames(path) == 12


def test_a_video_whose_writes_all_fail_is_an_error_when_closed(tmp_path):
    path = tmp_path / "out.avi"
    path.symlink_to(os.devnull if not Path("/dev/full").exists() else "/dev/full")
    sink = VideoFileSink(path, fps=10)
    with pytest.raises(OutputError) as error, sink:
        for image in _frames(5):
            sink.write(image)
    assert_one_line(error, str(path), "no decodable frame of the 5 written", "is not a regular file")


def test_a_finished_video_is_checked_and_passes(tmp_path):
    path = tmp_path / "ok.mp4"
    with VideoFileSink(path, fps=10) as sink:
        for image in _frames(7):
            sink.write(image)
    assert decodable_frames(path) == 7 == count_frames(path)
    assert decodable_frames(tmp_path / "missing.mp4") is None


def test_an_image_that_cannot_be_written_says_why_and_keeps_the_one_before(tmp_path, monkeypatch):
    sink = ImageFolderSink(tmp_path / "out")
    sink.write(np.zeros((8, 8, 3), np.uint8), "frame")
    before = (tmp_path / "out" / "frame.png").read_bytes()

    def disk_full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    with pytest.raises(OutputError) as error:
        sink.write(np.full((8, 8, 3), 255, np.uint8), "frame")
    assert_one_line(error, str(tmp_path / "out" / "frame.png"), "No space left on device")
    monkeypatch.undo()
    assert (tmp_path / "out" / "frame.png").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame.png"], "no partial file left"


def test_quiet_libraries_keeps_a_level_the_user_chose(monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", "32")
    logs.quiet_libraries()
    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == "32"
    monkeypatch.delenv("OPENCV_FFMPEG_LOGLEVEL")
    logs.quiet_libraries()
    assert os.environ["OPENCV_FFMPEG_LOGLEVEL"] == logs.FFMPEG_QUIET
