"""The web viewer (`-o http://HOST:PORT`) in process: its address and token rules, what a viewer receives,
and that a viewer which is slow, gone, foreign or one too many never holds up the pipeline."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import aiohttp
import numpy as np
import pytest

from edgemtl.errors import OutputError
from edgemtl.runtime import Engine, open_output, open_source, run_pipeline
from edgemtl.runtime.viewer import ViewerSink, parse_address
from tests.helpers import assert_one_line, write_mjpeg_avi


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


@pytest.fixture
def viewer():
    sink = open_output(f"http://127.0.0.1:{free_port()}")
    assert isinstance(sink, ViewerSink)
    with sink:
        yield sink


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


async def receive(url: str, updates: int, timeout: float = 20.0) -> list[dict]:
    """The first `updates` (state, JPEG) pairs a viewer gets, the state parsed; meta messages kept too."""
    messages: list = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket_:
        deadline = time.monotonic() + timeout
        while sum(isinstance(m, bytes) for m in messages) < updates and time.monotonic() < deadline:
            message = await socket_.receive(timeout=timeout)
            messages.append(message.data if message.type == aiohttp.WSMsgType.BINARY else json.loads(message.data))
    return messages


def feed(sink: ViewerSink, engine: Engine, frames: int, size=(48, 64)) -> None:
    """Frames through the pipeline's own call, as a thread would while viewers watch."""
    from edgemtl.runtime.sources import Frame

    rng = np.random.default_rng(0)
    for index in range(frames):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        sink.write_result(image, Frame(index, f"f{index}", image, time.perf_counter()), engine.predict(image), {})
        time.sleep(0.04)


# --- addresses, ports and tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("uri", ["http://127.0.0.1", "http://:8080", "http://127.0.0.1:8080/page", "http://h:x"])
def test_a_malformed_viewer_address_is_one_line_naming_it(uri):
    with pytest.raises(OutputError) as error:
        parse_address(uri)
    assert_one_line(error, uri, "http://HOST:PORT")


def test_a_port_in_use_is_one_line_naming_the_uri_and_the_fix():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        uri = f"http://127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(OutputError) as error:
            open_output(uri)
    assert_one_line(error, uri, "in use", "choose another port")


def test_binding_beyond_the_loopback_needs_a_token():
    uri = f"http://0.0.0.0:{free_port()}"
    with pytest.raises(OutputError) as error:
        open_output(uri)
    assert_one_line(error, uri, "--token")
    with open_output(uri, token="s3cret") as sink:  # with a token it serves (on every interface)
        assert status_of(f"http://127.0.0.1:{sink.address.port}/?token=s3cret") == 200


def test_localhost_is_loopback_and_needs_no_token():
    assert parse_address("http://localhost:8080").loopback
    assert parse_address("http://127.0.0.2:8080").loopback
    assert not parse_address("http://0.0.0.0:8080").loopback


def test_without_the_token_every_path_is_401_and_with_it_the_page_is_served():
    with open_output(f"http://127.0.0.1:{free_port()}", token="s3cret") as sink:
        base = f"http://127.0.0.1:{sink.address.port}"
        assert status_of(f"{base}/") == 401
        assert status_of(f"{base}/ws") == 401
        assert status_of(f"{base}/?token=wrong") == 401
        assert status_of(f"{base}/?token=s3cret") == 200
        assert status_of(f"{base}/", {"X-Edgemtl-Token": "s3cret"}) == 200
        assert status_of(f"{base}/", {"Authorization": "Bearer s3cret"}) == 200
        assert sink.url == f"{base}/?token=s3cret"


def test_a_page_of_another_origin_may_not_connect(viewer):
    url = f"http://127.0.0.1:{viewer.address.port}/ws"
    assert status_of(url, {"Origin": "http://evil.example"}) == 403


# --- what viewers receive ---------------------------------------------------------------------------------


def test_several_viewers_get_the_legend_the_state_and_jpeg_frames(viewer, engine):
    import threading

    url = f"http://127.0.0.1:{viewer.address.port}/ws"

    async def two_viewers():
        return await asyncio.gather(receive(url, 3), receive(url, 3))

    feeder = threading.Thread(target=feed, args=(viewer, engine, 60))
    feeder.start()
    try:
        both = asyncio.run(two_viewers())
    finally:
        feeder.join()
    for messages in both:
        meta = messages[0]
        assert meta["type"] == "meta"
        assert [t["name"] for t in meta["tasks"]] == ["scene", "segmentation"]
        colours = {t["name"]: t["colors"] for t in meta["tasks"]}
        assert colours["scene"] == [] and len(colours["segmentation"]) == 4  # the mask's colours, as painted
        states = [m for m in messages if isinstance(m, dict) and m["type"] == "state"]
        assert len(states) >= 3 and states[-1]["frame"] > states[0]["frame"]
        assert set(states[0]["results"]["scene"]) >= {"label", "confidence", "probabilities"}
        jpegs = [m for m in messages if isinstance(m, bytes)]
        assert all(j[:2] == b"\xff\xd8" for j in jpegs)  # JPEG's start-of-image marker


def test_with_no_viewer_nothing_is_encoded_and_the_page_names_the_model(viewer, engine):
    feed(viewer, engine, 3)
    assert viewer.offered == 0
    with urllib.request.urlopen(f"http://127.0.0.1:{viewer.address.port}/", timeout=10) as answer:
        page = answer.read().decode()
    assert "<canvas" in page and "new WebSocket" in page and "/*SCRIPT*/" not in page


def test_a_viewer_that_never_reads_does_not_slow_the_pipeline(viewer, engine, tmp_path):
    """A viewer connects and stops reading (its socket buffer fills): the pipeline runs at full speed."""
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 150, size=(96, 128))
    stuck = socket.create_connection(("127.0.0.1", viewer.address.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        with open_source(clip) as source:
            stats = run_pipeline(engine, source, viewer, report=None)
        assert stats.frames == 150
        assert viewer.offered > 0  # it was watching, and the frames went to the server
    finally:
        stuck.close()


def test_one_viewer_too_many_is_refused_with_503(engine):
    with open_output(f"http://127.0.0.1:{free_port()}") as sink:
        sink.server.max_viewers = 1
        url = f"http://127.0.0.1:{sink.address.port}/ws"

        async def two():
            async with aiohttp.ClientSession() as session, session.ws_connect(url):
                await asyncio.sleep(0.2)
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect(url)
                return refused.value.status

        assert asyncio.run(two()) == 503


# --- which frames are sent ----------------------------------------------------------------------------------


class _Clock:
    """perf_counter for the sink alone: each reading is `step` seconds after the last."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


class _Server:
    """Stands in for the server's thread: one viewer watching, every offered frame kept."""

    viewers = 1

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def offer(self, image: np.ndarray, state: dict) -> None:
        self.frames.append(image)

    def set_meta(self, meta: dict) -> None:
        pass


@pytest.fixture
def watched(viewer, monkeypatch):
    """The viewer with a stand-in server and a clock of its own that ticks 0.05 s a reading (its interval is
    1/15 s): the clock comes due between two readings of one frame in turn."""
    monkeypatch.setattr("edgemtl.runtime.viewer.sink.time", _Clock(0.05))
    monkeypatch.setattr(viewer, "server", _Server())
    yield viewer
    monkeypatch.undo()  # the real server again, for the fixture to close


class _Prediction:
    """Results with nothing in them: what the sink sends beside a frame is not the question here."""

    def to_dict(self) -> dict:
        return {}


def test_the_viewer_never_sends_a_frame_the_pipeline_left_undrawn(watched):
    """The pipeline asks before drawing; the answer holds for the frame even when the clock comes due between
    that question and the write (it sent the captured frame, undrawn, before)."""
    from edgemtl.runtime.pipeline import Lane, PipelineStats
    from edgemtl.runtime.sources import Frame

    lane = Lane(SimpleNamespace(dropped=0), watched, PipelineStats("clip", "viewer", "cpu"), draw_stats=False)
    lane.overlay = SimpleNamespace(render=lambda image, prediction, steady: 255 - image)  # "drawn": inverted
    watched._meta_sent = True  # no legend to make of empty results
    captured = np.full((48, 64, 3), 100, np.uint8)
    for index in range(20):
        lane.emit(Frame(index, f"f{index}", captured.copy(), 0.0), _Prediction())
    sent = watched.server.frames
    assert len(sent) >= 5, "frames were sent, at the viewer's rate"
    undrawn = [i for i, image in enumerate(sent) if np.array_equal(image, captured)]
    assert not undrawn, f"frames {undrawn} of {len(sent)} sent were never drawn"


def test_a_sink_fed_by_hand_still_gets_its_frames_at_its_rate(watched):
    from edgemtl.runtime.sources import Frame

    watched._meta_sent = True
    image = np.full((48, 64, 3), 100, np.uint8)
    for index in range(20):
        watched.write_result(image, Frame(index, f"f{index}", image, 0.0), _Prediction(), {})
    assert 5 <= len(watched.server.frames) < 20  # every frame that came due, none more often than 15/s
    watched.write(image, "by hand")
    assert len(watched.server.frames) == watched.offered
