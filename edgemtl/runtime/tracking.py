"""Object tracking: each detected object keeps one id from frame to frame (`--track bytetrack|ocsort`).

A controller cannot act on a box that changes identity every frame. The trackers are Roboflow's `trackers`
package (ByteTrack, OC-SORT: Kalman-filtered boxes matched by IoU, Apache-2.0), imported only when tracking
is asked for (`pip install 'edgemtl[track]'`); it needs NumPy, SciPy, OpenCV and `supervision`, not PyTorch.

    Tracker          one library tracker: one source's boxes of one detection task → a track id per box
    SourceTracking   one source's trackers, one per detection task; a pipeline lane holds one, so several
                     cameras never share a tracker, even when their frames ran in one batch

A box gets id -1 until its track is confirmed (the library's `minimum_consecutive_frames`) and when it was
not matched to a track (a low-score box no track claimed). Ids count from 0 per tracker: (source, task, id)
names an object. Boxes are the detection contract's arrays: (K, 4) float32 x1, y1, x2, y2 in frame pixels,
(K,) scores, (K,) int64 classes, the first `count` rows valid. Torch-free, like the rest of the runtime.
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
#: defaults (0.7 to start, 0.6 to count as a confident box) were tuned on MOT17's detector, not on ours.
TRACKERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bytetrack": ("ByteTrackTracker", {"track_activation_threshold": 0.5, "high_conf_det_threshold": 0.5}),
    "ocsort": ("OCSORTTracker", {"high_conf_det_threshold": 0.4}),
}
DEFAULT_TRACKER = "bytetrack"
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
    the motion model by the real time between frames instead of one frame. `settings` go to the library's
    class as they are (e.g. `lost_track_buffer=60`).
    """

    def __init__(self, name: str = DEFAULT_TRACKER, *, frame_rate: float = 30.0, **settings: Any) -> None:
        class_name, defaults = TRACKERS[check_tracker_name(name)]
        library, supervision = _library()
        self.name = name
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
        return ids

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
        """`prediction` with track ids on the objects of the tracked tasks (a new Prediction)."""
        results = dict(prediction.items())
        for task, tracker in self.trackers.items():
            result = results[task]
            objects = result.objects
            if objects is None:  # a result without boxes: nothing to follow
                continue
            ids = tracker.update(objects.boxes, objects.scores, objects.classes, len(objects), timestamp)
            results[task] = dataclasses.replace(result, objects=objects.with_track_ids(ids))  # type: ignore[type-var]
        tracked = Prediction(results, prediction.overlay)
        tracked.buffers = prediction.buffers
        return tracked

    def reset(self) -> None:
        for tracker in self.trackers.values():
            tracker.reset()
