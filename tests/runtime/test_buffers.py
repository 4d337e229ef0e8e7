"""Reused buffers: the pool itself, and a pipeline whose frames go round it without one frame's arrays
overwriting another's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgemtl.runtime import Engine, open_source, run_multicamera, run_pipeline
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.overlay import Overlay
from edgemtl.runtime.sinks import FrameSink


def test_a_given_back_array_is_handed_out_again_and_nothing_else_is():
    pool = BufferPool()
    first = pool.take((4, 5, 3))
    assert first.shape == (4, 5, 3) and first.dtype == np.uint8 and pool.allocated == 1
    pool.give_back(first, first, None, np.zeros((4, 5, 3), np.uint8), first[1:])  # twice, foreign, a view
    assert pool.take((4, 5, 3)) is first
    second = pool.take((4, 5, 3))
    assert second is not first and pool.allocated == 2  # `first` is out again: a new one
    assert pool.take((4, 5), np.float32).dtype == np.float32 and pool.allocated == 3


def test_frames_of_ever_new_sizes_leave_free_buffers_for_the_last_sizes_only():
    pool = BufferPool()
    for side in range(1, 101):  # a folder of photos, each its own size
        pool.give_back(pool.take((side, side, 3)))
    assert len(pool._free) <= 16 and pool.allocated == 100
    recent = pool.take((100, 100, 3))
    pool.give_back(recent)
    assert pool.take((100, 100, 3)) is recent


def write_textured_video(path, count: int, size=(48, 64), seed: int = 3) -> None:
    """Frames of noise, each its own, so a frame overwritten by a later one shows in its results."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size[1], size[0]))
    for _ in range(count):
        writer.write(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    writer.release()


class CheckingSink(FrameSink):
    """Keeps copies of what each frame produced, taken during the call (all a sink may rely on)."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.indices: list[int] = []

    def write(self, image: np.ndarray, name: str = "") -> None:
        raise AssertionError("the pipeline writes results")

    def wants_image(self) -> bool:
        return True

    def write_result(self, image, frame, prediction, live) -> None:
        self.images.append(image.copy())
        self.masks.append(prediction["segmentation"].mask.copy())
        self.indices.append(frame.index)


@pytest.mark.parametrize(
    ("model", "size"),
    [("exported_model", (48, 64)), ("exported_model", (32, 32)), ("frame_sized_model", (48, 64))],
    ids=["host path", "frames at the model's size", "frame-sized"],
)
def test_pooled_frames_give_the_results_of_fresh_ones_and_the_pool_stays_small(tmp_path, request, model, size):
    path = request.getfixturevalue(model)
    video = tmp_path / "noise.avi"
    frames = 200
    write_textured_video(video, frames, size)
    sink = CheckingSink()
    with open_source(video) as source:
        stats = run_pipeline(Engine(path, "cpu"), source, sink, report=None, draw_stats=False)
    assert stats.frames == frames and sink.indices == list(range(frames))

    reference = Engine(path, "cpu")
    assert_fresh_results(reference, video, sink)
    # At most 12 frames are in flight (two queues of 4, and one in hand at each stage); each holds its
    # decoded image, its resized input (none for a frame-sized file) and one array per graph output.
    per_frame = 2 + len(reference.session.get_outputs())
    assert 0 < stats.buffers <= 12 * per_frame < frames


def assert_fresh_results(reference: Engine, video, sink: CheckingSink) -> None:
    """What `sink` kept equals the video read and run one frame at a time: nothing shared, nothing reused."""
    overlay = Overlay()
    with open_source(video) as source:
        for index, frame in enumerate(source):
            prediction = reference.predict(frame.image)
            np.testing.assert_array_equal(sink.masks[index], prediction["segmentation"].mask)
            np.testing.assert_array_equal(sink.images[index], overlay.render(frame.image, prediction))


def test_several_cameras_batched_share_pooled_outputs_without_overwriting_them(tmp_path, exported_model):
    videos = [tmp_path / f"noise{seed}.avi" for seed in (1, 2)]
    for seed, video in enumerate(videos, start=1):
        write_textured_video(video, 60, seed=seed)
    sinks = [CheckingSink(), CheckingSink()]
    sources = [open_source(video) for video in videos]
    try:
        stats = run_multicamera(Engine(exported_model, "cpu"), sources, sinks, report=None, draw_stats=False)
    finally:
        for source in sources:
            source.close()
    assert stats.batched and stats.ticks < stats.frames == 120
    for video, sink in zip(videos, sinks, strict=True):
        assert sink.indices == list(range(60))
        assert_fresh_results(Engine(exported_model, "cpu"), video, sink)
