"""Object tracking: each detected object keeps one id from frame to frame (`--track bytetrack|ocsort`).

A controller cannot act on a box that changes identity every frame. The trackers are Roboflow's `trackers`
package (ByteTrack, OC-SORT: Kalman-filtered boxes matched by IoU, Apache-2.0), imported only when tracking
is asked for (`pip install 'edgemtl[track]'`); it needs NumPy, SciPy, OpenCV and `supervision`, not PyTorch.

    Tracker          one library tracker: one source's boxes of one detection task → a track id per box
    SourceTracking   one source's trackers, one per detection task; a pipeline lane holds one, so several
                     cameras never share a tracker, even when their frames ran in one batch

A box gets id -1 until its track is confirmed (the library's `minimum_consecutive_frames`) and when it was
not matched to a track (a low-score box no track claimed). Ids count from 0 per tracker: (source, task, id)
names an object. A confirmed object the detector misses for a frame or two is held: reported where the
tracker's motion model puts it, marked `held`, for at most `hold` frames (3 by default, 0: never), so a box
does not flicker out of a controller's view on one missed detection. Boxes are the detection contract's
arrays: (K, 4) float32 x1, y1, x2, y2 in frame pixels, (K,) scores, (K,) int64 classes, the first `count`
rows valid. Torch-free, like the rest of the runtime.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgemtl.errors import ConfigError
from edgemtl.kinds import kind_of
from edgemtl.runtime.results import Prediction
from edgemtl.tasks import TaskSpec

#: `--track NAME` → the `trackers` class that tracks, and the settings edgemtl gives it beyond the library's
#: defaults. A box at the export's default score threshold (0.25) must be able to start a track: the library's
#: defaults (0.7 to start, 0.6 to count as a confident box) were tuned on MOT17's detector, not on ours. A box
#: must overlap its track's predicted box by IoU 0.3 (library: 0.1, ByteTrack's paper 0.2): on
#: benchmarks/tracking.py's drive (settings chosen on seeds 0-2) it halves identity swaps where objects cross,
#: and kept more identities than 0.4 once the boxes were noisier (docs/runtime.md#tracking).
TRACKERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bytetrack": (
        "ByteTrackTracker",
        {"track_activation_threshold": 0.5, "high_conf_det_threshold": 0.5, "minimum_iou_threshold": 0.3},
    ),
    "ocsort": ("OCSORTTracker", {"high_conf_det_threshold": 0.3}),
}
DEFAULT_TRACKER = "bytetrack"
DEFAULT_HOLD = 3  # frames a confirmed object the detector missed is still reported (0.1 s at 30 FPS)
#: The graph outputs of a task whose results are boxes (the detection contract): what tracking needs.
BOX_FIELDS = ("boxes", "scores", "classes", "count")


def check_tracker_name(name: str) -> str:
    """`name` if it is a tracker edgemtl knows; a one-line ConfigError naming the valid ones otherwise."""
    if name not in TRACKERS:
        raise ConfigError(f"tracker {name!r} is not known: expected one of {', '.join(TRACKERS)}")
    return name


def has_boxes(task: TaskSpec) -> bool:
    """Whether `task`'s results are boxes (its kind's graph outputs are the detection contract's)."""
    return set(BOX_FIELDS) <= set(kind_of(task).outputs)


def box_tasks(tasks: Sequence[TaskSpec], model: str = "the model") -> list[TaskSpec]:
    """The tasks tracking follows; a one-line ConfigError when `tasks` has none (tracking needs boxes)."""
    found = [task for task in tasks if has_boxes(task)]
    if not found:
        described = ", ".join(f"{t.name} ({t.kind.value})" for t in tasks)
        raise ConfigError(
            f"--track needs a detection task, and {model} has none ({described}): export a model with a "
            "detection task, or leave --track out"
        )
    return found


def check_tracking(name: str, tasks: Sequence[TaskSpec], model: str = "the model") -> None:
    """Everything `--track NAME` needs, before any source is opened: a known tracker, a task with boxes, and
    the library installed; each missing one is a one-line ConfigError."""
    check_tracker_name(name)
    box_tasks(tasks, model)
    _library()


def _library() -> tuple[Any, Any]:
    """The `trackers` package and `supervision` (its box type), imported on first use: a runtime that never
    tracks never needs them."""
    try:
        import supervision
        import trackers
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"tracking needs the `trackers` package ({exc.name} is missing): pip install 'edgemtl[track]'"
        ) from None
    return trackers, supervision


class Tracker:
    """One library tracker over one stream of boxes (one source's one detection task).

    `update` takes a frame's boxes and returns each box's track id, in the boxes' order (-1: no confirmed
    track). `frame_rate` scales the library's lost-track buffer (frames a track survives unseen: about one
    second at its default); `timestamp` (seconds, increasing) lets a live source that dropped frames step
    the motion model by the real time between frames instead of one frame. `held` gives, after an update,
    the confirmed tracks the detector missed in that frame for at most `hold` frames in a row. `settings`
    go to the library's class as they are (e.g. `lost_track_buffer=60`).
    """

    def __init__(
        self, name: str = DEFAULT_TRACKER, *, frame_rate: float = 30.0, hold: int = DEFAULT_HOLD, **settings: Any
    ) -> None:
        class_name, defaults = TRACKERS[check_tracker_name(name)]
        if hold < 0:
            raise ConfigError(f"tracker hold={hold!r}: expected a whole number of frames >= 0 (0: never hold)")
        library, supervision = _library()
        self.name, self.hold = name, hold
        self._last: dict[int, tuple[int, float]] = {}  # track id → class and score of its last box
        try:
            self._tracker = getattr(library, class_name)(frame_rate=frame_rate, **{**defaults, **settings})
        except TypeError as exc:  # a setting the library's class does not take
            raise ConfigError(f"tracker {name!r} does not take these settings: {exc}") from None
        self._detections = supervision.Detections

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        classes: np.ndarray,
        count: int | None = None,
        timestamp: float | None = None,
    ) -> np.ndarray:
        """(count,) int64 track ids of the first `count` boxes (all when None), in their order; -1 untracked."""
        count = len(boxes) if count is None else int(count)
        rows = np.arange(count)
        detections = self._detections(
            xyxy=np.asarray(boxes[:count], np.float32).reshape(count, 4),
            confidence=np.asarray(scores[:count], np.float32),
            class_id=np.asarray(classes[:count], np.int64),
            data={"row": rows},
        )
        tracked = self._tracker.update(detections, timestamp=timestamp)
        ids = np.full(count, -1, np.int64)
        if len(tracked):  # the library returns the boxes in an order of its own: put each id back on its row
            ids[np.asarray(tracked.data["row"], np.int64)] = np.asarray(tracked.tracker_id, np.int64)
        alive = {t.tracker_id for t in self._tracker.tracks}
        self._last = {i: last for i, last in self._last.items() if i in alive}
        for row in np.flatnonzero(ids >= 0):
            self._last[int(ids[row])] = (int(classes[row]), float(scores[row]))
        return ids

    def held(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The objects held in the last update: confirmed tracks without a box in it, unseen for at most `hold`
        frames, as (boxes (n, 4) float32 where the motion model puts them, scores and classes of their last
        box, track ids)."""
        tracks = [
            t for t in self._tracker.tracks if t.tracker_id in self._last and 1 <= t.time_since_update <= self.hold
        ]
        boxes = np.array([t.get_state_bbox() for t in tracks], np.float32).reshape(len(tracks), 4)
        last = [self._last[t.tracker_id] for t in tracks]
        scores = np.array([score for _, score in last], np.float32)
        classes = np.array([cls for cls, _ in last], np.int64)
        return boxes, scores, classes, np.array([t.tracker_id for t in tracks], np.int64)

    def reset(self) -> None:
        """Forget every track (a new scene, a source that reconnected); ids start from 0 again."""
        self._tracker.reset()


class SourceTracking:
    """One source's trackers: one `Tracker` per task whose results are boxes.

    `update` gives each such task's `result.objects` their track ids and leaves the other tasks' results as
    they are. `ids` does the same on bare contract arrays, for a caller without results.
    """

    def __init__(
        self,
        tasks: Sequence[TaskSpec],
        name: str = DEFAULT_TRACKER,
        *,
        frame_rate: float | None = None,
        model: str = "the model",
        **settings: Any,
    ) -> None:
        check_tracker_name(name)
        self.name = name
        rate = frame_rate if frame_rate and frame_rate > 0 else 30.0
        self.trackers = {task.name: Tracker(name, frame_rate=rate, **settings) for task in box_tasks(tasks, model)}

    def ids(self, arrays: Mapping[str, Mapping[str, np.ndarray]], timestamp: float | None = None) -> dict[str, Any]:
        """Track ids per task from each task's contract arrays ({"boxes", "scores", "classes", "count"})."""
        return {
            task: tracker.update(*(arrays[task][key] for key in BOX_FIELDS), timestamp=timestamp)
            for task, tracker in self.trackers.items()
        }

    def update(self, prediction: Prediction, timestamp: float | None = None) -> Prediction:
        """`prediction` with track ids on the objects of the tracked tasks, and the objects they hold (a new
        Prediction)."""
        results = dict(prediction.items())
        for task, tracker in self.trackers.items():
            result = results[task]
            objects = result.objects
            if objects is None:  # a result without boxes: nothing to follow
                continue
            ids = tracker.update(objects.boxes, objects.scores, objects.classes, len(objects), timestamp)
            tracked = objects.with_track_ids(ids).with_held(*tracker.held())
            results[task] = dataclasses.replace(result, objects=tracked)  # type: ignore[type-var]
        tracked = Prediction(results, prediction.overlay)
        tracked.buffers = prediction.buffers
        return tracked

    def reset(self) -> None:
        for tracker in self.trackers.values():
            tracker.reset()
