"""Object tracking (`--track`): ids that stay with their object, per source, and the one-line errors.

The trackers run on the detection contract's arrays (boxes (K, 4) xyxy in frame pixels, scores, classes,
count), so these tests need no model: boxes move as a scene's objects would.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgemtl.errors import ConfigError
from edgemtl.runtime.tracking import TRACKERS, Tracker, box_tasks, check_tracker_name
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line


def moving(frame: int, start: tuple[float, float], step: tuple[float, float], size=(40.0, 60.0)) -> list[float]:
    x, y = start[0] + step[0] * frame, start[1] + step[1] * frame
    return [x, y, x + size[0], y + size[1]]


def arrays(boxes: list[list[float]], scores: list[float], classes: list[int], pad: int = 0):
    """The contract's arrays for one frame: `pad` zero rows past `count`, as a graph returns them."""
    k = len(boxes)
    out = np.zeros((k + pad, 4), np.float32), np.zeros(k + pad, np.float32), np.zeros(k + pad, np.int64)
    if k:
        out[0][:k], out[1][:k], out[2][:k] = boxes, scores, classes
    return (*out, k)


@pytest.mark.parametrize("name", list(TRACKERS))
def test_a_moving_box_keeps_its_id(name):
    tracker = Tracker(name)
    ids = [
        int(tracker.update(*arrays([moving(f, (10, 50), (6, 1))], [0.9], [0], pad=3))[0])
        for f in range(30)  # 6 px a frame across a 640-wide frame
    ]
    confirmed = [i for i in ids if i >= 0]
    assert len(confirmed) >= 26, ids  # a track is confirmed after a frame or three, then kept
    assert set(confirmed) == {confirmed[0]}, ids
    assert ids[-1] == confirmed[0]


@pytest.mark.parametrize("name", list(TRACKERS))
def test_ids_come_back_in_the_boxes_order_and_follow_each_box(name):
    """Two objects crossing paths vertically apart, given in a shuffled order each frame: the id of each row
    is its own object's, however the library orders its answer."""
    tracker = Tracker(name)
    rng = np.random.default_rng(0)
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    for f in range(25):
        objects = {"a": moving(f, (20, 40), (8, 0)), "b": moving(f, (400, 300), (-8, 0))}
        order = list(rng.permutation(["a", "b"]))
        ids = tracker.update(*arrays([objects[o] for o in order], [0.9, 0.55], [0, 1]))
        assert ids.shape == (2,) and ids.dtype == np.int64
        for label, track in zip(order, ids):
            if track >= 0:
                seen[label].add(int(track))
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"], seen


def test_no_boxes_and_padding_rows_are_ignored():
    tracker = Tracker()
    assert tracker.update(*arrays([], [], [], pad=5)).shape == (0,)
    for f in range(5):
        ids = tracker.update(*arrays([moving(f, (10, 10), (2, 2))], [0.9], [0], pad=5))
        assert ids.shape == (1,)
    assert ids[0] >= 0


def test_each_source_keeps_its_own_tracks():
    """Two cameras see different objects; their frames interleave as a batched tick hands them out. Each
    tracker's ids are exactly what it gives when it runs alone: nothing leaks from the other source."""
    frames = 20
    a_boxes = [[moving(f, (10, 10), (5, 0))] for f in range(frames)]
    b_boxes = [[moving(f, (300, 200), (0, 4)), moving(f, (100, 300), (3, -2))] for f in range(frames)]
    alone_a, alone_b = Tracker(), Tracker()
    expected_a = [alone_a.update(*arrays(b, [0.9], [0])) for b in a_boxes]
    expected_b = [alone_b.update(*arrays(b, [0.9, 0.8], [0, 1])) for b in b_boxes]
    a, b = Tracker(), Tracker()
    for f in range(frames):
        np.testing.assert_array_equal(b.update(*arrays(b_boxes[f], [0.9, 0.8], [0, 1])), expected_b[f])
        np.testing.assert_array_equal(a.update(*arrays(a_boxes[f], [0.9], [0])), expected_a[f])
    assert expected_a[-1][0] == 0 and sorted(expected_b[-1]) == [0, 1]  # each counts its own ids from 0


def test_reset_forgets_the_tracks():
    tracker = Tracker()
    for f in range(5):
        tracker.update(*arrays([moving(f, (10, 10), (2, 0))], [0.9], [0]))
    tracker.reset()
    assert tracker.update(*arrays([moving(9, (10, 10), (2, 0))], [0.9], [0]))[0] == -1  # a new, unconfirmed track


# --- bad input --------------------------------------------------------------------------------------------


def test_an_unknown_tracker_is_one_line_naming_the_valid_ones():
    with pytest.raises(ConfigError) as error:
        check_tracker_name("deepsort")
    assert_one_line(error, "'deepsort'", "bytetrack, ocsort")
    with pytest.raises(ConfigError):
        Tracker("sort")


def test_tracking_a_model_without_boxes_is_one_line():
    with pytest.raises(ConfigError) as error:
        box_tasks(NAVIGATION_TASKS, "nav.onnx")
    assert_one_line(error, "--track", "detection task", "nav.onnx", "scene (classification)")


def test_a_setting_the_library_does_not_take_is_one_line():
    with pytest.raises(ConfigError) as error:
        Tracker("bytetrack", lost_frames=3)
    assert_one_line(error, "'bytetrack'", "lost_frames")


def test_without_the_library_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "trackers", None)
    with pytest.raises(ConfigError) as error:
        Tracker()
    assert_one_line(error, "pip install 'edgemtl[track]'")


def test_the_trackers_run_without_torch_or_matplotlib():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None
        sys.modules["matplotlib"] = None
        import numpy as np
        from edgemtl.runtime.tracking import Tracker
        for name in ("bytetrack", "ocsort"):
            tracker = Tracker(name)
            for f in range(5):
                ids = tracker.update(np.array([[f, 0, f + 10, 10]], np.float32), np.array([0.9]), np.array([0]))
            assert ids[0] >= 0, ids
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
