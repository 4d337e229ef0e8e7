"""`edgemtl camera -o http://…` and `-o run.mcap` as a user runs them: one-line refusals, a flood of garbage
connections that the pipeline never notices, and a recording finalized when SIGTERM stops the camera."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time

import pytest
from mcap.reader import make_reader

from tests.helpers import assert_one_line_error, invoke, popen_edgemtl, write_mjpeg_avi
from tests.runtime.test_viewer import free_port


def wait_for_port(port: int, process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listened on port {port} within {timeout} s")


def test_a_port_in_use_is_one_line_and_exit_1(exported_model, tmp_path):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        uri = f"http://127.0.0.1:{taken.getsockname()[1]}"
        result = invoke("camera", clip, "-m", exported_model, "-o", uri)
    assert_one_line_error(result, uri, "in use", "choose another port")


def test_a_bind_beyond_the_loopback_without_a_token_is_one_line(exported_model, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEMTL_VIEWER_TOKEN", raising=False)
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 5)
    uri = f"http://0.0.0.0:{free_port()}"
    assert_one_line_error(invoke("camera", clip, "-m", exported_model, "-o", uri), uri, "--token")


def test_an_unwritable_mcap_path_is_one_line(exported_model, tmp_path):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 5)
    target = tmp_path / "missing" / "run.mcap"
    assert_one_line_error(invoke("camera", clip, "-m", exported_model, "-o", target), str(target))


def _garbage(port: int, index: int) -> None:
    """One hostile connection: random bytes, a broken request line, a half header left open, an oversized
    header, a websocket handshake without the token, or a connect-and-vanish."""
    payloads = [
        os.urandom(512),
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",  # never finished
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + os.urandom(256),
        b"",
    ]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(payloads[index % len(payloads)])
            connection.settimeout(0.2)
            with contextlib.suppress(OSError):
                connection.recv(4096)
    except OSError:  # refused or reset: what a flood may get
        pass


def test_a_flood_of_garbage_connections_does_not_touch_the_pipeline(exported_model, tmp_path):
    """200 hostile connections while a paced 100-frame run (4 s) is watched: every frame is done, exit 0."""
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 100, size=(48, 64), fps=25.0)
    port = free_port()
    summary = tmp_path / "summary.json"
    process = popen_edgemtl(
        ["camera", clip, "-m", exported_model, "-o", f"http://127.0.0.1:{port}", "--pace", "--json", summary]
    )
    try:
        wait_for_port(port, process)
        sent = 0
        deadline = time.monotonic() + 30
        while sent < 200 and time.monotonic() < deadline:  # bounded in count and time
            _garbage(port, sent)
            sent += 1
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stderr == ""
    assert sent == 200
    assert json.loads(summary.read_text())["frames"] == 100
    assert stdout.startswith("100 frames")


@pytest.mark.slow
def test_sigterm_mid_run_leaves_a_finalized_recording(exported_model, tmp_path):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 1000, size=(48, 64), fps=25.0)
    path = tmp_path / "run.mcap"
    process = popen_edgemtl(["camera", clip, "-m", exported_model, "-o", path, "--pace"])
    try:
        deadline = time.monotonic() + 60
        while (not path.exists() or path.stat().st_size < 4096) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.1)
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert stderr.strip() == "terminated (SIGTERM); files written so far are complete"
    with open(path, "rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None, "no summary: the recording was not finalized"
        counts = {summary.channels[c].topic: n for c, n in summary.statistics.channel_message_counts.items()}
        assert 0 < counts["/camera/image"] < 1000
        assert len(set(counts.values())) == 1  # the same frames on every topic: nothing half-written
        times = [message.log_time for _, _, message in reader.iter_messages(topics=["/edgemtl/timing"])]
        assert times == sorted(times)
