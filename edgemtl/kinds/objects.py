"""One frame's detected objects, in the shape every output wants them: JSON, COCO results, labels, colours.

A detection task's graph returns fixed-size arrays (the detection contract): boxes (K, 4) float32 x1, y1,
x2, y2 in the frame's pixels, scores (K,), classes (K,) int64 and the count of valid rows. `Objects` holds a
frame's valid rows with the task's class names and, once tracked (edgemtl.runtime.tracking), each object's
track id, so the overlay, predictions.jsonl, the COCO results file, the results stream, the web viewer and
the MCAP recording all read one thing: a result's `objects` (`TaskResult.objects`, None for results without
boxes). NumPy only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemtl.palette import class_colors

UNTRACKED = -1  # the track id of a box no confirmed track claims (and of every box without --track)


@dataclass(frozen=True, eq=False)
class Objects:
    """A frame's objects: `boxes` (n, 4) float32 xyxy in frame pixels, `scores` (n,) float32, `classes` (n,)
    int64 indices into `names` (the task's class names), `track_ids` (n,) int64 or None when not tracked.
    `held` (n,) bool, when tracked: the row is a tracked object the detector missed in this frame, its box
    where the tracker's motion model puts it, its score and class those of its last box."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    names: tuple[str, ...]
    track_ids: np.ndarray | None = None
    held: np.ndarray | None = None

    @classmethod
    def from_outputs(
        cls, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, count: Any, names: Sequence[str]
    ) -> Objects:
        """The first `count` rows of one frame's contract arrays (copies: a graph's outputs are reused)."""
        n = max(0, min(int(np.asarray(count).reshape(-1)[0]), len(boxes)))
        return cls(
            np.array(boxes[:n], np.float32).reshape(n, 4),
            np.array(scores[:n], np.float32).reshape(n),
            np.array(classes[:n], np.int64).reshape(n),
            tuple(names),
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def with_track_ids(self, ids: np.ndarray) -> Objects:
        """These objects, detected in this frame, with their track ids (-1: no confirmed track)."""
        return dataclasses.replace(
            self, track_ids=np.asarray(ids, np.int64).reshape(len(self)), held=np.zeros(len(self), bool)
        )

    def with_held(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, ids: np.ndarray) -> Objects:
        """These tracked objects and, after them, the ones a tracker holds (see the class's `held`)."""
        if not len(boxes):
            return self
        assert self.track_ids is not None and self.held is not None, "hold objects once the detected ones are tracked"
        return Objects(
            np.concatenate([self.boxes, np.asarray(boxes, np.float32).reshape(-1, 4)]),
            np.concatenate([self.scores, np.asarray(scores, np.float32)]),
            np.concatenate([self.classes, np.asarray(classes, np.int64)]),
            self.names,
            np.concatenate([self.track_ids, np.asarray(ids, np.int64)]),
            np.concatenate([self.held, np.ones(len(boxes), bool)]),
        )

    def scaled(self, factor: float) -> Objects:
        """The same objects on a frame `factor` times larger (an upscaled overlay)."""
        return self.with_boxes(self.boxes * np.float32(factor))

    def with_boxes(self, boxes: np.ndarray) -> Objects:
        """The same objects at other coordinates (boxes mapped from the model's input to the frame)."""
        return dataclasses.replace(self, boxes=np.asarray(boxes, np.float32).reshape(len(self), 4))

    def class_names(self) -> list[str]:
        return [self.names[c] if 0 <= c < len(self.names) else str(int(c)) for c in self.classes]

    def labels(self) -> list[str]:
        """What is written by each box: `person 0.87 #3` (the track id once tracked and confirmed; a held
        object's label ends in `held`)."""
        ids = self.track_ids if self.track_ids is not None else np.full(len(self), UNTRACKED)
        held = self.held if self.held is not None else np.zeros(len(self), bool)
        return [
            f"{name} {score:.2f}" + (f" #{track}" if track != UNTRACKED else "") + (" held" if kept else "")
            for name, score, track, kept in zip(self.class_names(), self.scores.tolist(), ids.tolist(), held.tolist())
        ]

    def colors(self) -> np.ndarray:
        """(n, 3) uint8 BGR: each object's class colour (`object_colors`)."""
        if not len(self):
            return np.zeros((0, 3), np.uint8)
        return object_colors(len(self.names))[np.clip(self.classes, 0, len(self.names) - 1)]

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready, one dict per object: class (name), class_id, score, box [x1, y1, x2, y2] in frame pixels
        (0.1 px), and when tracked track_id (-1: not yet confirmed) and held (not detected in this frame)."""
        entries = []
        for i, name in enumerate(self.class_names()):
            entry: dict[str, Any] = {
                "class": name,
                "class_id": int(self.classes[i]),
                "score": round(float(self.scores[i]), 4),
                "box": [round(float(v), 1) for v in self.boxes[i]],
            }
            if self.track_ids is not None:
                entry["track_id"] = int(self.track_ids[i])
                entry["held"] = bool(self.held[i]) if self.held is not None else False
            entries.append(entry)
        return entries

    def coco(self, image_id: int) -> list[dict[str, Any]]:
        """COCO results-format entries (what pycocotools' `loadRes` reads): bbox [x, y, width, height],
        category_id = class index + 1 (COCO's ids start at 1), the image's id as given."""
        widths = self.boxes[:, 2:] - self.boxes[:, :2]
        return [
            {
                "image_id": int(image_id),
                "category_id": int(self.classes[i]) + 1,
                "bbox": [round(float(v), 2) for v in (*self.boxes[i, :2], *widths[i])],
                "score": round(float(self.scores[i]), 5),
            }
            for i in range(len(self))
        ]


def object_colors(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 BGR, one per object class: the palette's, less its first colour (black, the
    background of masks), so no box is drawn black."""
    return class_colors(min(num_classes + 1, 256))[1:]


def coco_categories(names: Sequence[str]) -> list[dict[str, Any]]:
    """The categories of a COCO file matching `Objects.coco`'s ids: {"id": index + 1, "name": name}."""
    return [{"id": i + 1, "name": name} for i, name in enumerate(names)]
