"""The results stream (`--results`): schema version 1 read back and validated field by field, to a file and
over UDP on 127.0.0.1, masks only when asked, and a slow or failing controller never stalls the camera."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgemtl.errors import ConfigError, OutputError
from edgemtl.runtime import Engine, open_source, run_pipeline
from edgemtl.runtime.results_stream import (
    RESULTS_SCHEMES,
    SCHEMA_VERSION,
    decode_rle,
    encode_png,
    encode_rle,
    open_results,
)
from edgemtl.runtime.sinks import NullSink
from edgemtl.runtime.steady import Steadier, parse_smoothing
from tests.helpers import assert_one_line, strict_loads, write_video

REPO = Path(__file__).resolve().parents[2]

# The schema of a line, as docs/runtime.md#results-schema states it: field → type.
SCHEMA = {
    "schema": int,
    "source": str,
    "source_index": int,
    "frame": int,
    "name": str,
    "captured": float,
    "latency_ms": float,
    "tasks": dict,
    "steady": dict,
}


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


def validate(line: dict, source: str) -> None:
    assert set(line) == set(SCHEMA), sorted(line)
    for key, kind in SCHEMA.items():
        assert isinstance(line[key], kind), (key, line[key])
    assert line["schema"] == SCHEMA_VERSION == 2 and line["source"] == source
    assert abs(line["captured"] - time.time()) < 120 and line["latency_ms"] > 0
    scene = line["tasks"]["scene"]
    assert scene["label"] in ("left", "straight", "right", "blocked") and 0 <= scene["confidence"] <= 1
    assert sum(scene["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert set(line["tasks"]["segmentation"]) == {"class_fractions"}  # no mask unless asked


def run(engine, source_path, results, steadier=None, frames=None):
    with open_source(source_path) as source:
        return run_pipeline(
            engine, source, NullSink(), report=None, results=results, steadier=steadier, max_frames=frames
        )


def test_file_lines_follow_the_schema_raw_and_steadied(tmp_path, engine):
    clip = write_video(tmp_path / "clip.mp4", 8)
    steadier = Steadier(engine.tasks, [parse_smoothing("scene:ema=0.6,dwell=3,latch=blocked:5")])
    with open_results(tmp_path / "results.jsonl") as results:
        stats = run(engine, clip, results, steadier)
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(lines) == stats.frames == 8 and stats.results_dropped == 0
    for index, line in enumerate(lines):
        validate(line, str(clip))
        assert line["frame"] == index and line["name"] == f"clip_{index:06d}" and line["source_index"] == 0
        assert set(line["steady"]) == {"scene"}  # only the smoothed task, beside its raw result
        assert set(line["steady"]["scene"]) == {"label", "confidence", "probabilities"}
    assert [line["captured"] for line in lines] == sorted(line["captured"] for line in lines)
    with open_results(tmp_path / "results.jsonl") as results:  # a second run appends
        run(engine, clip, results, frames=2)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 10


def test_a_nan_goes_out_as_null_so_strict_parsers_read_the_line(tmp_path):
    with open_results(tmp_path / "results.jsonl") as results:
        results.send({"schema": 2, "tasks": {"distance": {"values": {"metres": float("nan"), "angle": 1.5}}}})
    (line,) = (tmp_path / "results.jsonl").read_text().splitlines()
    assert strict_loads(line)["tasks"]["distance"]["values"] == {"metres": None, "angle": 1.5}


def test_masks_only_when_asked_and_they_decode_to_the_engines_mask(tmp_path, engine):
    frame = np.random.default_rng(1).integers(0, 256, (40, 48, 3), np.uint8)
    mask = engine.predict(frame)["segmentation"].mask
    assert np.array_equal(decode_rle(encode_rle(mask)), mask)
    assert np.array_equal(decode_rle(encode_rle(np.zeros((3, 0), np.uint8))), np.zeros((3, 0), np.uint8))
    import base64

    import cv2

    png = encode_png(mask)
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(png["data"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, mask) and png["shape"] == [40, 48]
    clip = write_video(tmp_path / "clip.mp4", 3, size=(40, 48))
    for encoding in ("rle", "png"):
        path = tmp_path / f"{encoding}.jsonl"
        with open_results(path, mask=encoding) as results:
            run(engine, clip, results)
        sent = [json.loads(line)["tasks"]["segmentation"]["mask"] for line in path.read_text().splitlines()]
        assert len(sent) == 3 and all(m["encoding"] == encoding and m["shape"] == [40, 48] for m in sent)
    assert all("mask" not in line["tasks"]["scene"] for line in map(json.loads, path.read_text().splitlines()))


def udp_receiver() -> socket.socket:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    return receiver


def test_udp_lines_reach_a_receiver_on_localhost(tmp_path, engine):
    clip = write_video(tmp_path / "clip.mp4", 6)
    receiver = udp_receiver()
    with receiver, open_results(f"udp://127.0.0.1:{receiver.getsockname()[1]}") as results:
        stats = run(engine, clip, results)
        lines = [json.loads(receiver.recv(65535)) for _ in range(stats.frames)]
    assert [line["frame"] for line in lines] == list(range(6))
    for line in lines:
        validate(line, str(clip))


def test_udp_without_a_receiver_and_a_blocked_writer_never_stall(tmp_path, engine, monkeypatch, caplog):
    clip = write_video(tmp_path / "clip.mp4", 4)
    closed = udp_receiver()
    port = closed.getsockname()[1]
    closed.close()  # nobody listens: the kernel answers with ICMP, the sender must not care
    with open_results(f"udp://127.0.0.1:{port}") as results:
        assert run(engine, clip, results).frames == 4

    release = threading.Event()

    class Stuck:  # a consumer that stopped reading: every write blocks until released
        def write(self, data: bytes) -> None:
            release.wait(30)

        def flush(self) -> None:
            """Nothing buffered."""

    from edgemtl.runtime import results_stream
    from edgemtl.runtime.results_stream import _QUEUE_LINES, _WriterThread

    sink = _WriterThread("stuck", Stuck(), None, owned=False)
    for index in range(_QUEUE_LINES + 500):  # returns at once: a full queue drops, it does not wait
        sink.send({"frame": index})
    assert sink.dropped >= 499
    release.set()
    sink.close()  # the queued lines are written, then it closes
    assert not sink.failed and sink.lines.empty()

    release.clear()
    monkeypatch.setattr(results_stream, "_CLOSE_WAIT_S", 0.2)
    stuck = _WriterThread("stuck", Stuck(), None, owned=False)
    stuck.send({"frame": 0})
    stuck.send({"frame": 1})
    with caplog.at_level(logging.WARNING, logger="edgemtl"):
        stuck.close()  # a reader that never reads again does not hold the camera's exit
    assert stuck.failed and any("stopped reading" in r.getMessage() for r in caplog.records)
    release.set()


def test_a_failing_write_is_said_once_and_the_run_goes_on(tmp_path, engine, caplog):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    clip = write_video(tmp_path / "clip.mp4", 5)
    with caplog.at_level(logging.WARNING, logger="edgemtl"), open_results("/dev/full") as results:
        stats = run(engine, clip, results)
    assert stats.frames == 5
    said = [r.getMessage() for r in caplog.records if "results /dev/full" in r.getMessage()]
    assert len(said) == 1 and "No space left on device" in said[0] and "goes on" in said[0], said


@pytest.mark.parametrize(
    ("uri", "fragments"),
    [
        ("ftp://host/x", ["'ftp://host/x'", "unknown scheme", *RESULTS_SCHEMES]),
        ("udp://127.0.0.1", ["'udp://127.0.0.1'", "udp://HOST:PORT"]),
        ("udp://127.0.0.1:99999", ["udp://HOST:PORT"]),
        ("udp://no-such-host.invalid:5600", ["no-such-host.invalid", "cannot resolve"]),
    ],
)
def test_bad_results_uris_are_one_line_naming_them(uri, fragments):
    with pytest.raises(OutputError) as error:
        open_results(uri)
    assert_one_line(error, *fragments)


def test_bad_results_paths_and_masks(tmp_path):
    with pytest.raises(OutputError) as error:
        open_results(tmp_path / "gone" / "r.jsonl")
    assert_one_line(error, "gone", "No such file")
    with pytest.raises(OutputError) as error:
        open_results(tmp_path)
    assert_one_line(error, "is a folder")
    with pytest.raises(ConfigError) as error:
        open_results(tmp_path / "r.jsonl", mask="jpeg")
    assert_one_line(error, "'jpeg'", "rle, png")


def test_zmq_subscribers_get_the_lines(tmp_path, engine):
    zmq = pytest.importorskip("zmq")
    probe = udp_receiver()  # a free port number (TCP and UDP ports are separate, but this one is rarely taken)
    port = probe.getsockname()[1]
    probe.close()
    with open_results(f"zmq://127.0.0.1:{port}") as results:
        subscriber = zmq.Context.instance().socket(zmq.SUB)
        subscriber.setsockopt(zmq.SUBSCRIBE, b"")
        subscriber.setsockopt(zmq.RCVTIMEO, 200)
        subscriber.connect(f"tcp://127.0.0.1:{port}")
        got = None
        for _ in range(50):  # a subscriber joins after a moment (ZeroMQ's slow joiner): publish until it hears
            results.send({"schema": 1, "probe": True})
            try:
                got = json.loads(subscriber.recv())
                break
            except zmq.Again:
                continue
        subscriber.close()
    assert got == {"schema": 1, "probe": True}
    with (
        pytest.raises(OutputError) as error,
        open_results(f"zmq://127.0.0.1:{port}"),
        open_results(f"zmq://127.0.0.1:{port}"),
    ):
        pass
    assert_one_line(error, f"zmq://127.0.0.1:{port}", "cannot bind")


def test_the_demo_consumer_prints_each_decision(tmp_path, engine):
    probe = udp_receiver()
    port = probe.getsockname()[1]
    probe.close()
    consumer = subprocess.Popen(
        [sys.executable, str(REPO / "demos" / "results_consumer.py"), str(port), "--count", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert consumer.stdout.readline().startswith("listening on udp://127.0.0.1:")
        clip = write_video(tmp_path / "clip.mp4", 3)
        steadier = Steadier(engine.tasks, [parse_smoothing("scene:dwell=2")])
        with open_results(f"udp://127.0.0.1:{port}") as results:
            run(engine, clip, results, steadier)
        out, err = consumer.communicate(timeout=30)
    finally:
        consumer.kill()
    lines = out.splitlines()
    assert consumer.returncode == 0 and err == "", err
    assert len(lines) == 3 and all(f"clip.mp4 frame {i} (" in line for i, line in enumerate(lines))
    assert all("scene " in line and "(steady " in line for line in lines)
