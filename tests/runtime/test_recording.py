"""The MCAP recording (`-o run.mcap`): read back with the mcap reader — every topic's message count, the
Foxglove schemas, timestamps that never go back — and a file that cannot be written refused up front."""

from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pytest
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.RawImage_pb2 import RawImage
from mcap.reader import make_reader

from edgemtl.errors import OutputError, SourceError
from edgemtl.runtime import Engine, open_output, open_source, run_pipeline
from edgemtl.runtime.recording import McapSink
from edgemtl.runtime.sources import Frame, FrameSource
from tests.helpers import assert_one_line, write_mjpeg_avi

TOPICS = ("/camera/image", "/edgemtl/overlay", "/edgemtl/segmentation/mask", "/edgemtl/results", "/edgemtl/timing")


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


def read_back(path) -> dict:
    """Per topic: its schema (name, encoding) and its messages' (log time, publish time, data)."""
    topics: dict = {}
    with open(path, "rb") as stream:
        reader = make_reader(stream)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None, "the file has no summary: not finalized"
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            entry = topics.setdefault(channel.topic, {"schema": (schema.name, schema.encoding), "messages": []})
            entry["messages"].append((message.log_time, message.publish_time, message.data))
        topics["_metadata"] = {m.name: m.metadata for m in reader.iter_metadata()}
        topics["_count"] = summary.statistics.message_count
    return topics


def assert_stamps_never_go_back(messages: list) -> None:
    logged = [m[0] for m in messages]
    published = [m[1] for m in messages]
    assert logged == sorted(logged) and published == sorted(published)
    assert all(log >= pub for log, pub, _ in messages)  # output after capture


def test_a_recording_holds_every_frame_on_every_topic(engine, tmp_path):
    clip = write_mjpeg_avi(tmp_path / "clip.avi", 30, size=(48, 64))
    path = tmp_path / "run.mcap"
    with open_source(clip) as source, open_output(path) as sink:
        stats = run_pipeline(engine, source, sink, report=None)
    assert stats.frames == 30
    topics = read_back(path)
    assert {t: len(topics[t]["messages"]) for t in TOPICS} == dict.fromkeys(TOPICS, 30)
    assert topics["_count"] == 30 * len(TOPICS)
    assert topics["/camera/image"]["schema"] == ("foxglove.CompressedImage", "protobuf")
    assert topics["/edgemtl/segmentation/mask"]["schema"] == ("foxglove.RawImage", "protobuf")
    assert topics["/edgemtl/results"]["schema"] == ("edgemtl.Results", "jsonschema")
    for topic in TOPICS:
        assert_stamps_never_go_back(topics[topic]["messages"])
    image = CompressedImage.FromString(topics["/camera/image"]["messages"][0][2])
    assert image.format == "jpeg" and image.data[:2] == b"\xff\xd8"
    # Each message holds its own frame (flat, 8 * index), not a later one that reused its buffer.
    levels = [
        cv2.imdecode(np.frombuffer(CompressedImage.FromString(m[2]).data, np.uint8), cv2.IMREAD_COLOR).mean()
        for m in topics["/camera/image"]["messages"]
    ]
    np.testing.assert_allclose(levels, [8 * index for index in range(30)], atol=3)
    mask = RawImage.FromString(topics["/edgemtl/segmentation/mask"]["messages"][5][2])
    assert (mask.width, mask.height, mask.encoding, len(mask.data)) == (64, 48, "mono8", 64 * 48)
    assert max(mask.data) < 4  # class ids of the segmentation task's 4 classes
    results = [json.loads(m[2]) for m in topics["/edgemtl/results"]["messages"]]
    assert [r["frame"] for r in results] == list(range(30))
    assert set(results[0]["results"]) == {"scene", "segmentation"}
    timing = json.loads(topics["/edgemtl/timing"]["messages"][-1][2])
    assert timing["latency_ms"] > 0 and "fps" in timing
    tasks = json.loads(topics["_metadata"]["edgemtl.tasks"]["tasks"])
    assert [t["name"] for t in tasks] == ["scene", "segmentation"]


class DyingCamera(FrameSource):
    """Gives `frames` frames, then fails as an unplugged camera does."""

    uri = "dying"

    def __init__(self, frames: int) -> None:
        self.frames, self.index = frames, 0

    def read(self) -> Frame | None:
        if self.index == self.frames:
            raise SourceError("camera 'dying' stopped delivering frames")
        self.index += 1
        image = np.full((48, 64, 3), 10 * self.index % 256, np.uint8)
        return Frame(self.index - 1, f"dying_{self.index - 1}", image, time.perf_counter())


def test_a_source_failing_mid_run_leaves_a_finalized_recording(engine, tmp_path):
    path = tmp_path / "run.mcap"
    with pytest.raises(SourceError), DyingCamera(12) as source, open_output(path) as sink:
        run_pipeline(engine, source, sink, report=None)
    topics = read_back(path)
    assert len(topics["/camera/image"]["messages"]) == 12


def test_an_mcap_path_that_cannot_be_written_is_one_line_before_any_work(tmp_path):
    missing = tmp_path / "no" / "such" / "run.mcap"
    with pytest.raises(OutputError) as error:
        open_output(missing)
    assert_one_line(error, str(missing), "cannot write MCAP recording")
    (tmp_path / "taken.mcap").write_bytes(b"mine")
    with pytest.raises(OutputError) as error:
        open_output(tmp_path / "taken.mcap")
    assert_one_line(error, "taken.mcap", "exists")
    assert (tmp_path / "taken.mcap").read_bytes() == b"mine"
    if os.geteuid() != 0:  # root writes anywhere
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        with pytest.raises(OutputError):
            open_output(folder / "run.mcap")


def test_a_failed_write_is_an_output_error_naming_the_file(tmp_path):
    path = tmp_path / "run.mcap"
    sink = McapSink(path)
    sink._file.close()  # the file went away under the writer (a disk unplugged)
    with pytest.raises(OutputError) as error:
        sink.close()
    assert_one_line(error, str(path))
