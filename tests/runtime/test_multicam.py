"""Several cameras through one engine: two files and a local HTTP MJPEG stream that dies mid-run. Each source
keeps its own output, results and statistics; the dead one is reported once and the others go on."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest

from edgemtl.errors import FrameError, OutputError
from edgemtl.runtime import Engine, open_output, open_source
from edgemtl.runtime.multicam import run_multicamera, source_outputs
from edgemtl.runtime.results_stream import open_results
from edgemtl.runtime.steady import Steadier, parse_smoothing
from tests.helpers import assert_one_line, count_frames, write_video
from tests.runtime.test_sources import MjpegServer


@pytest.fixture(scope="module")
def engine(exported_model) -> Engine:
    return Engine(exported_model, device="cpu")


@pytest.fixture
def dying_stream():
    server = MjpegServer([15], interval_s=0.02)  # 15 frames, then the camera hangs up and refuses (503)
    yield server
    server.close()


def test_two_files_and_a_stream_that_dies(tmp_path, engine, dying_stream, caplog):
    files = [write_video(tmp_path / "a.mp4", 40, size=(48, 64)), write_video(tmp_path / "b.mp4", 30, size=(40, 48))]
    uris = [str(files[0]), str(files[1]), dying_stream.url]
    outputs = source_outputs(str(tmp_path / "out.mp4"), 3)
    assert outputs == [str(tmp_path / f"out-{i}.mp4") for i in range(3)]
    sources = [open_source(files[0]), open_source(files[1]), open_source(dying_stream.url, reconnects=0)]
    sinks = [open_output(out, fps=10) for out in outputs]
    steadiers = [Steadier(engine.tasks, [parse_smoothing("scene:dwell=2")]) for _ in uris]
    with caplog.at_level(logging.INFO, logger="edgemtl"), open_results(tmp_path / "r.jsonl") as results:
        try:
            stats = run_multicamera(
                engine, sources, sinks, output_names=outputs, report=None, results=results, steadiers=steadiers
            )
        finally:
            for closing in (*sinks, *sources):
                closing.close()
    a, b, stream = stats.sources
    assert (a.frames, a.error, b.frames, b.error) == (40, None, 30, None)  # the files went on to their end
    assert 0 < stream.frames <= 15 and "stopped after" in stream.error and dying_stream.url in stream.error
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "source 2" in warned[0] and "the other sources go on" in warned[0], warned
    assert stats.batched and stats.ticks < stats.frames  # frames of several sources shared engine runs
    assert stats.frames == 40 + 30 + stream.frames and not stats.all_died
    assert [count_frames(out) for out in outputs[:2]] == [40, 30]  # each source its own video
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    for index, uri in enumerate(uris):
        mine = [line for line in lines if line["source"] == uri]
        assert len(mine) == stats.sources[index].frames and {line["source_index"] for line in mine} == {index}
        assert [line["frame"] for line in mine] == sorted(line["frame"] for line in mine)
        assert all(set(line["steady"]) == {"scene"} for line in mine)
    summary = stats.lines()
    assert len(summary) == 4 and summary[0].startswith("3 sources, ") and "stopped early: stream" in summary[3]
    assert json.loads(json.dumps(stats.to_dict()))["sources"][2]["error"] == stream.error
    for p in ("p50", "p99"):
        assert all(s.latency_ms[p] > 0 for s in stats.sources)


def test_batched_predictions_equal_one_frame_at_a_time(engine):
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, size, np.uint8) for size in ((48, 64, 3), (40, 48, 3), (32, 32, 3))]
    batched = engine.predict_batch(frames)
    for frame, together in zip(frames, batched, strict=True):
        alone = engine.predict(frame)
        np.testing.assert_allclose(together["scene"].probabilities, alone["scene"].probabilities, atol=1e-5)
        assert np.array_equal(together["segmentation"].mask, alone["segmentation"].mask)
        assert together["segmentation"].mask.shape == frame.shape[:2]


def test_a_fixed_batch_export_runs_one_source_at_a_time_and_says_so(tmp_path, exported_model, caplog):
    fixed = Engine(exported_model, device="cpu")
    fixed.metadata = dataclasses.replace(fixed.metadata, batch=1)  # as a file exported with --batch 1 reads
    with pytest.raises(FrameError) as error:
        fixed.predict_batch([np.zeros((32, 32, 3), np.uint8)] * 2)
    assert_one_line(error, "batches of exactly 1")
    clips = [write_video(tmp_path / f"{n}.mp4", 5) for n in "ab"]
    with caplog.at_level(logging.INFO, logger="edgemtl"):
        sources = [open_source(c) for c in clips]
        stats = run_multicamera(fixed, sources, [open_output("none")] * 2, report=None)
    said = [r for r in caplog.records if "one run per source" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO and "--batch dynamic" in said[0].getMessage()
    assert not stats.batched and [s.frames for s in stats.sources] == [5, 5]


def test_outputs_per_source_and_max_frames_per_source(tmp_path, engine):
    assert source_outputs("none", 3) == ["none"] * 3 and source_outputs("display", 2) == ["display"] * 2
    assert source_outputs("frames", 2) == ["frames-0", "frames-1"] and source_outputs("o.avi", 1) == ["o.avi"]
    with pytest.raises(OutputError) as error:
        source_outputs("rtsp://host/out", 2)
    assert_one_line(error, "'rtsp://host/out'", "takes one source", "out-0.mp4")
    clips = [write_video(tmp_path / f"{n}.mp4", 9) for n in "ab"]
    stats = run_multicamera(
        engine, [open_source(c) for c in clips], [open_output("none")] * 2, report=None, max_frames=4
    )
    assert [s.frames for s in stats.sources] == [4, 4]
