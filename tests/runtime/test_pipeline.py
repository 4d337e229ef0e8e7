"""The pipeline (capture → infer → overlay → output) and the outputs it writes to."""

from __future__ import annotations

import json
import os
import signal
import threading

import cv2
import numpy as np
import pytest

from edgemtl.errors import FrameError, OutputError, SourceError
from edgemtl.runtime import Engine, open_output, open_source, run_pipeline
from edgemtl.runtime.pipeline import LatencyHistogram
from edgemtl.runtime.sinks import FrameSink, ImageFolderSink, NullSink, VideoFileSink
from edgemtl.runtime.sources import Frame, FrameSource
from tests.helpers import assert_one_line, count_frames, truncate, write_images, write_mjpeg_avi, write_video


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


class KeepingSink(FrameSink):
    """Keeps copies of what it is given; asks to stop, or raises, at a chosen frame."""

    def __init__(self, stop_after: int | None = None, raise_at: int | None = None) -> None:
        self.images: list[np.ndarray] = []
        self.names: list[str] = []
        self.stop_after, self.raise_at = stop_after, raise_at

    def write(self, image: np.ndarray, name: str = "") -> None:
        if self.raise_at is not None and len(self.images) == self.raise_at:
            raise KeyboardInterrupt
        self.images.append(image.copy())
        self.names.append(name)
        self.stop_requested = self.stop_after is not None and len(self.images) >= self.stop_after


def no_pipeline_threads_left() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("edgemtl-")]


def test_video_file_to_video_file(tmp_path, engine):
    source_path = write_video(tmp_path / "drive.mp4", 12, size=(48, 64))
    output = tmp_path / "out.mp4"
    with open_source(source_path) as source, open_output(output, fps=source.fps) as sink:
        stats = run_pipeline(engine, source, sink, report=None)
    assert (stats.frames, stats.dropped, stats.interrupted) == (12, 0, False)
    assert count_frames(output) == 12
    capture = cv2.VideoCapture(str(output))
    assert (capture.get(cv2.CAP_PROP_FRAME_HEIGHT), capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == (48, 64)
    latency = stats.latency_ms
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"]
    assert stats.fps > 0 and stats.seconds > 0
    summary = json.loads(json.dumps(stats.to_dict()))
    assert summary["frames"] == 12 and summary["source"] == str(source_path)
    assert "CPUExecutionProvider" in summary["engine"] and "I/O binding off" in summary["engine"]
    assert no_pipeline_threads_left()


def test_images_to_a_folder_keep_their_names(tmp_path, engine):
    write_images(tmp_path / "in", 3, size=(24, 40))
    with open_source(tmp_path / "in") as source, open_output(tmp_path / "out") as sink:
        assert isinstance(sink, ImageFolderSink)
        stats = run_pipeline(engine, source, sink, report=None)
    assert stats.frames == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img_0.png", "img_1.png", "img_2.png"]


def test_overlay_and_live_statistics_are_drawn(tmp_path, engine):
    source_path = write_video(tmp_path / "drive.mp4", 4, size=(96, 128))
    runs = {}
    for draw_stats in (True, False):
        sink = KeepingSink()
        with open_source(source_path) as source:
            run_pipeline(engine, source, sink, draw_stats=draw_stats, report=None)
        runs[draw_stats] = sink.images
        assert sink.names == [f"drive_{i:06d}" for i in range(4)]
    with_stats, without = runs[True][-1], runs[False][-1]
    assert (with_stats[-20:, :60] != without[-20:, :60]).any(), "statistics text in the bottom-left corner"
    np.testing.assert_array_equal(with_stats[:40], without[:40])  # the rest of the overlay is the same


class UndrawnSink(KeepingSink):
    """A sink that will not use the overlay (as `-o none`, or a viewer nobody watches)."""

    def wants_image(self) -> bool:
        return False


def test_nothing_is_drawn_for_a_sink_that_does_not_want_the_picture(tmp_path, engine):
    source_path = write_video(tmp_path / "drive.mp4", 3, size=(96, 128))
    with open_source(source_path) as source:
        captured = [frame.image.copy() for frame in source]
    drawn, undrawn = KeepingSink(), UndrawnSink()
    for sink in (drawn, undrawn):
        with open_source(source_path) as source:
            stats = run_pipeline(engine, source, sink, report=None)
        assert stats.frames == 3
    for frame, plain, overlay in zip(captured, undrawn.images, drawn.images):
        np.testing.assert_array_equal(plain, frame)  # the captured frame, untouched: no overlay, no text
        assert (overlay != frame).any()
    assert not NullSink().wants_image() and NullSink(draw=True).wants_image()


def test_a_signal_whose_handler_does_not_raise_still_marks_the_run_interrupted(tmp_path, engine):
    """An application's own SIGTERM handler that only logs: the loop stops between frames and says so."""
    source_path = write_video(tmp_path / "drive.mp4", 30, size=(48, 64))
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))

    class SignallingSink(KeepingSink):
        def write(self, image: np.ndarray, name: str = "") -> None:
            super().write(image, name)
            if len(self.images) == 3:
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        sink = SignallingSink()
        with open_source(source_path) as source:
            stats = run_pipeline(engine, source, sink, report=None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stats.interrupted and seen == [signal.SIGTERM]
    assert stats.frames == len(sink.images) == 3, "the frame in hand is finished and counted, no more"


def test_max_frames_and_the_log(tmp_path, engine):
    lines: list[str] = []
    with open_source(write_video(tmp_path / "drive.mp4", 10)) as source:
        stats = run_pipeline(engine, source, NullSink(), max_frames=4, report=lines.append, report_every_s=0)
    assert stats.frames == 4
    assert len(lines) == 4 and lines[0].startswith("1 frames") and "FPS" in lines[-1]


def test_live_source_accounts_for_every_frame(tmp_path, engine):
    path = write_mjpeg_avi(tmp_path / "camera.avi", 20, fps=200.0)
    with open_source(path, live=True) as source:
        stats = run_pipeline(engine, source, KeepingSink(), report=None)
    assert stats.frames + stats.dropped == 20


def test_sink_asking_to_stop(tmp_path, engine):
    sink = KeepingSink(stop_after=3)
    with open_source(write_video(tmp_path / "drive.mp4", 10)) as source:
        stats = run_pipeline(engine, source, sink, report=None)
    assert stats.frames == 3 and stats.interrupted
    assert no_pipeline_threads_left()


def test_ctrl_c_ends_the_run_with_a_summary(tmp_path, engine):
    sink = KeepingSink(raise_at=2)
    with open_source(write_video(tmp_path / "drive.mp4", 10)) as source:
        stats = run_pipeline(engine, source, sink, report=None)
    assert stats.frames == 2 and stats.interrupted and len(sink.images) == 2
    assert no_pipeline_threads_left()


def test_source_dying_mid_run_leaves_a_playable_video(tmp_path, engine):
    path = truncate(write_mjpeg_avi(tmp_path / "cut.avi", 30, size=(48, 64)), 0.5)
    output = tmp_path / "out.avi"
    with pytest.raises(SourceError) as error, open_source(path) as source, open_output(output) as sink:
        run_pipeline(engine, source, sink, report=None)
    assert_one_line(error, str(path), "truncated")
    assert 0 < count_frames(output) < 30
    assert no_pipeline_threads_left()


class BadFrames(FrameSource):
    uri = "bad"

    def __init__(self) -> None:
        self.frames = [np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.uint8)]

    def read(self) -> Frame | None:
        return Frame(0, "bad", self.frames.pop(0)) if self.frames else None


def test_error_in_the_inference_thread_reaches_the_caller(engine):
    sink = KeepingSink()
    with pytest.raises(FrameError) as error:
        run_pipeline(engine, BadFrames(), sink, report=None)
    assert_one_line(error, "(32, 32)")
    assert len(sink.images) == 1
    assert no_pipeline_threads_left()


def test_latency_histogram_percentiles():
    samples = np.random.default_rng(0).lognormal(np.log(0.005), 0.5, 5000)
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.add(float(sample))
    for q in (50, 90, 99):
        assert histogram.percentile(q) == pytest.approx(np.percentile(samples, q), rel=0.015)
    assert LatencyHistogram().percentile(50) == 0.0


# --- outputs ----------------------------------------------------------------------------------------------


def test_output_kinds(tmp_path):
    assert isinstance(open_output("none"), NullSink)
    assert isinstance(open_output(tmp_path / "a.mp4"), VideoFileSink)
    assert isinstance(open_output(tmp_path / "frames"), ImageFolderSink)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("blocker/out.mp4", "is not a folder"),
        ("missing/out.mp4", "does not exist"),
        ("blocker/frames", "cannot create output folder"),
        ("existing.mp4", "exists"),
        ("one.png", "extension '.png'"),
        ("rtp://host/x", "unknown scheme"),
        ("clip.webm", "extension '.webm'"),
    ],
)
def test_output_that_cannot_be_written(tmp_path, name, fragment):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    (tmp_path / "existing.mp4").write_bytes(b"an earlier recording")
    target = name if "://" in name else tmp_path / name
    with pytest.raises(OutputError) as error:
        open_output(target)
    assert_one_line(error, fragment)
    assert (tmp_path / "existing.mp4").read_bytes() == b"an earlier recording"


def test_display_without_a_screen_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OutputError) as error:
        open_output("display")
    message = assert_one_line(error, "display", "write to a file instead")
    assert "DISPLAY and WAYLAND_DISPLAY are unset" in message or "without a GUI backend" in message


def test_display_that_cannot_be_reached_says_so(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":97")  # no X server there: OpenCV's Qt would abort the process
    with pytest.raises(OutputError) as error:
        open_output("display")
    assert_one_line(error, "display", "could not open a test window", "write to a file instead")
