"""Frame sources: files in order, live sources keeping the newest frame, streams and their reconnects,
and one-line errors for sources that cannot be opened or die. Network traffic stays on 127.0.0.1."""

from __future__ import annotations

import http.server
import logging
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from edgemtl.errors import SourceError
from edgemtl.runtime.sources import Frame, ImageSource, ThreadedSource, VideoSource, open_source
from tests.helpers import assert_one_line, truncate, write_images, write_mjpeg_avi, write_video


class MjpegServer:
    """An HTTP MJPEG camera on 127.0.0.1 (multipart/x-mixed-replace), as IP cameras serve.

    `sessions[i]` is how many frames the i-th connection gets before the server hangs up; connections
    beyond the list are refused with 503, as a camera that went away.
    """

    def __init__(self, sessions: list[int], interval_s: float = 0.01) -> None:
        self.connections = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                index, server.connections = server.connections, server.connections + 1
                if index >= len(sessions):
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for i in range(sessions[index]):
                    # The brightness encodes (connection, frame), so the test can tell where a frame came from.
                    _, jpeg = cv2.imencode(".jpg", np.full((40, 48, 3), 100 * index + 10 * i, np.uint8))
                    part = jpeg.tobytes()
                    header = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(part)
                    try:
                        self.wfile.write(header + part + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(interval_s)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg_server():
    servers: list[MjpegServer] = []

    def start(sessions: list[int]) -> MjpegServer:
        servers.append(MjpegServer(sessions))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_all(source, frames: list[Frame] | None = None, limit: int = 500) -> list[Frame]:
    """Every frame to the end of the stream into `frames` (kept when the source then fails), bounded."""
    frames = [] if frames is None else frames
    for frame in source:
        frames.append(frame)
        assert len(frames) <= limit, "source did not end"
    return frames


# --- files -------------------------------------------------------------------------------------------------


def test_video_file_reports_size_rate_and_end(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 6, size=(40, 48), fps=10.0)
    with open_source(path) as source:
        assert isinstance(source, VideoSource) and not source.live
        assert source.size == (40, 48) and source.fps == pytest.approx(10.0)
        frames = read_all(source)
        assert source.ended and source.read() is None and source.dropped == 0
    assert [f.index for f in frames] == list(range(6))
    timestamps = [f.timestamp for f in frames]
    assert timestamps == sorted(timestamps) and timestamps[0] > 0


def test_paced_video_file_keeps_its_frame_rate(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 5, fps=25.0)
    with open_source(path, pace=True) as source:
        frames = read_all(source)
    gaps = np.diff([f.timestamp for f in frames])
    assert len(frames) == 5 and (gaps >= 1 / 25 - 2e-3).all(), gaps  # never faster than the file's rate


def test_file_read_ahead_in_a_thread_drops_nothing(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 12)
    with ThreadedSource(open_source(path), drop_stale=False, depth=2) as source:
        frames = []
        for frame in source:
            time.sleep(0.01)  # a consumer slower than the decoder: the reader waits, it does not drop
            frames.append(frame)
        assert source.dropped == 0 and source.size == (40, 48)
    assert [f.index for f in frames] == list(range(12))
    brightness = [float(f.image.mean()) for f in frames]
    np.testing.assert_allclose(brightness, [40 * i % 256 for i in range(12)], atol=4)  # in order


def test_video_file_as_a_camera_keeps_the_newest_frame_and_counts_the_rest(tmp_path):
    path = write_mjpeg_avi(tmp_path / "camera.avi", 30, fps=100.0)
    with open_source(path, live=True) as source:
        assert source.live
        frames = []
        while (frame := source.read()) is not None:
            frames.append(frame)
            time.sleep(0.05)  # 5 camera frames arrive while one is processed
            assert len(frames) <= 30
        dropped = source.dropped
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)), "frames come newest-first, never twice, never backwards"
    assert dropped > 0 and len(frames) < 30
    assert len(frames) + dropped == 30, "every frame is either delivered or counted as dropped"
    assert indices[-1] == 29, "the newest frame is kept to the end"


# --- sources that die or never open --------------------------------------------------------------------


def test_truncated_video_delivers_what_it_has_then_fails(tmp_path):
    path = truncate(write_mjpeg_avi(tmp_path / "cut.avi", 30), 0.5)
    frames = []
    with pytest.raises(SourceError) as error, open_source(path) as source:
        for frame in source:
            frames.append(frame)
    assert 0 < len(frames) < 30
    assert_one_line(error, str(path), "truncated", "of 30 frames")


def test_truncated_video_read_as_a_camera_fails_in_the_reader(tmp_path):
    path = truncate(write_mjpeg_avi(tmp_path / "cut.avi", 30, fps=200.0), 0.5)
    with pytest.raises(SourceError) as error, open_source(path, live=True) as source:
        read_all(source)
    assert_one_line(error, str(path), "truncated")


def test_truncated_mp4_cannot_be_opened(tmp_path):
    path = truncate(write_video(tmp_path / "cut.mp4", 10), 0.6)  # the index (moov) is written last
    with pytest.raises(SourceError) as error:
        open_source(path)
    assert_one_line(error, str(path), "cannot open")


def test_camera_that_does_not_exist(tmp_path):
    with pytest.raises(SourceError) as error:
        open_source("/dev/video97")
    assert_one_line(error, "/dev/video97", "cannot open")


class ScriptedCapture:
    """Stands in for cv2.VideoCapture: returns the given images, then end of stream."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = list(images)

    def read(self) -> tuple[bool, np.ndarray | None]:
        return (True, self.images.pop(0)) if self.images else (False, None)

    def release(self) -> None:
        """Nothing held."""


def test_frame_size_change_mid_stream(tmp_path):
    # OpenCV's FFmpeg backend rescales such frames itself; cameras on other backends do not.
    source = VideoSource("cam.avi", str(write_video(tmp_path / "cam.avi", 2, size=(40, 48))))
    source.capture = ScriptedCapture([np.zeros((40, 48, 3), np.uint8), np.zeros((20, 24, 3), np.uint8)])
    assert source.read().image.shape == (40, 48, 3)
    with pytest.raises(SourceError) as error:
        source.read()
    assert_one_line(error, "cam.avi", "40x48", "20x24", "frame 1")


# --- network streams (a local HTTP MJPEG server) ---------------------------------------------------------


def test_mjpeg_stream_is_live_and_reports_its_size(mjpeg_server):
    server = mjpeg_server([8])
    frames: list[Frame] = []
    with pytest.raises(SourceError) as error, open_source(server.url, reconnects=0, timeout_s=2) as source:
        assert source.live and source.size == (40, 48)
        read_all(source, frames)
    assert_one_line(error, server.url, "stopped after")
    assert 0 < len(frames) <= 8
    assert all(f.image.shape == (40, 48, 3) for f in frames)


def test_stream_reconnects_then_stops_with_a_clear_message(mjpeg_server, caplog):
    server = mjpeg_server([4, 4])  # two connections of 4 frames, then 503 for ever
    frames: list[Frame] = []
    with (
        caplog.at_level(logging.WARNING, "edgemtl"),
        pytest.raises(SourceError) as error,
        open_source(server.url, live=False, reconnects=2, timeout_s=2) as source,
    ):
        read_all(source, frames)
    assert_one_line(error, server.url, "2 reconnect attempts")
    brightness = [int(f.image.mean()) for f in frames]
    assert any(b < 90 for b in brightness) and any(b >= 90 for b in brightness), "frames from both connections"
    assert server.connections == 4, "the first connection, the reconnect, then 2 failed attempts"
    assert "reconnected" in caplog.text


def test_stream_that_never_answers(tmp_path):
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/stream.mjpg"
        with pytest.raises(SourceError) as error:
            open_source(url, timeout_s=0.5)
    assert_one_line(error, url, "no answer within 0.5 s")


def test_hidden_files_in_an_image_folder_are_skipped(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (folder / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # what macOS leaves on other disks
    (folder / ".hidden.jpg").write_bytes(b"")
    with open_source(folder) as source:
        assert [frame.name for frame in source] == ["a"]


def test_a_size_change_mid_stream_is_refused_or_scaled_as_the_docs_say(tmp_path):
    """docs/runtime.md: OpenCV's FFmpeg backend scales frames after a size change to the first size (then
    nothing can see the change); a backend that passes the new size through gets a SourceError."""
    path = tmp_path / "change.mjpeg"  # concatenated JPEGs: FFmpeg's MJPEG demuxer reads each at its own size
    rng = np.random.default_rng(0)
    with path.open("wb") as stream:
        for size in [(40, 48)] * 3 + [(64, 80)] * 3:
            stream.write(cv2.imencode(".jpg", rng.integers(0, 256, (*size, 3), dtype=np.uint8))[1].tobytes())
    try:
        with open_source(path) as source:
            shapes = {frame.image.shape for frame in source}
    except SourceError as error:
        assert "changed frame size from 40x48 to 64x80" in str(error)
    else:
        assert shapes == {(40, 48, 3)}, "scaled to the first size, as documented"


# --- frame sources --------------------------------------------------------------------------------------


def test_source_image_file(tmp_path):
    (image,) = write_images(tmp_path, 1)
    with open_source(tmp_path / "img_0.png") as source:
        assert isinstance(source, ImageSource)
        frames = list(source)
    assert [(f.index, f.name) for f in frames] == [(0, "img_0")]
    np.testing.assert_array_equal(frames[0].image, image)


def test_source_folder_in_sorted_order_ignoring_other_files(tmp_path):
    images = write_images(tmp_path / "frames", 3)
    (tmp_path / "frames" / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path / "frames")) as source:
        frames = list(source)
    assert [f.name for f in frames] == ["img_0", "img_1", "img_2"]
    assert [f.index for f in frames] == [0, 1, 2]
    for frame, image in zip(frames, images):
        np.testing.assert_array_equal(frame.image, image)
        assert frame.image.dtype == np.uint8 and frame.image.shape == (24, 40, 3)


def test_source_glob(tmp_path):
    write_images(tmp_path, 3)
    cv2.imwrite(str(tmp_path / "other.png"), np.zeros((4, 4, 3), np.uint8))
    with open_source(str(tmp_path / "img_*.png")) as source:
        names = [f.name for f in source]
    assert names == ["img_0", "img_1", "img_2"]


def test_source_glob_without_matches(tmp_path):
    with pytest.raises(SourceError) as error:
        open_source(str(tmp_path / "*.png"))
    assert_one_line(error, "*.png")


def test_source_video_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 5)
    with open_source(str(path)) as source:
        assert isinstance(source, VideoSource)
        assert source.fps == pytest.approx(10.0)
        frames = list(source)
    assert [f.name for f in frames] == [f"clip_{i:06d}" for i in range(5)]
    assert [f.index for f in frames] == list(range(5))
    assert all(f.image.shape == (40, 48, 3) and f.image.dtype == np.uint8 for f in frames)
    brightness = [float(f.image.mean()) for f in frames]
    assert brightness == sorted(brightness), "frames come in order"


def test_source_unknown_scheme():
    with pytest.raises(SourceError) as error:
        open_source("ftp://x")
    assert_one_line(error, "ftp")


def test_source_missing_path(tmp_path):
    path = tmp_path / "missing.mp4"
    with pytest.raises(SourceError) as error:
        open_source(path)
    assert_one_line(error, str(path), "does not exist")


def test_source_empty_folder(tmp_path):
    with pytest.raises(SourceError) as error:
        open_source(tmp_path)
    assert_one_line(error, str(tmp_path), "no images")


def test_source_unreadable_image_fails_when_read(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"this is not a png" * 10)
    source = open_source(path)  # opening is lazy: the folder may be large
    with pytest.raises(SourceError) as error:
        list(source)
    assert_one_line(error, str(path))


def test_source_unreadable_video(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00garbage" * 50)
    with pytest.raises(SourceError) as error:
        open_source(path)
    assert_one_line(error, str(path))
