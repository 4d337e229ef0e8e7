"""Several cameras tracked at once: each source's objects keep their own ids, though their frames ran in one
batched tick. The "engine" here finds white squares in each frame (a stand-in detector, so the test needs no
detection model); the pipeline, its lanes and the trackers are the real ones."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from edgemtl.kinds.detection import DetectionResult
from edgemtl.kinds.objects import Objects
from edgemtl.runtime import open_source
from edgemtl.runtime.multicam import run_multicamera
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sinks import NullSink
from edgemtl.runtime.tracking import SourceTracking
from tests.runtime.objects_kit import CLASSES

SIZE = (96, 128)


class SquareFinder:
    """Duck-types the Engine for `run_multicamera`: a frame-sized file with a dynamic batch that "detects"
    each white square of a frame as a person."""

    frame_sized = True
    metadata = SimpleNamespace(batch=None)
    path = Path("squares.onnx")

    def __init__(self, task) -> None:
        self.task, self.batches = task, []

    def describe(self) -> str:
        return "square finder"

    def warmup(self) -> None:
        pass

    def prepare(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return image

    def predict_batch(self, images, prepared, pool=None) -> list[Prediction]:
        self.batches.append(len(images))
        return [self._find(image) for image in images]

    def _find(self, image: np.ndarray) -> Prediction:
        _, _, stats, _ = cv2.connectedComponentsWithStats((image[:, :, 0] > 128).astype(np.uint8))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:]], np.float32).reshape(-1, 4)
        found = Objects(boxes, np.full(len(boxes), 0.9, np.float32), np.ones(len(boxes), np.int64), CLASSES)
        return Prediction({self.task.name: DetectionResult(self.task, found)})


class Collect(NullSink):
    def __init__(self) -> None:
        super().__init__(draw=True)
        self.objects: list[Objects] = []

    def write_result(self, image, frame, prediction, live) -> None:
        self.objects.append(prediction["objects"].objects)


def write_squares(folder: Path, frames: int, paths) -> Path:
    """PNG frames (lossless) with a 14-px white square on each path: path(f) → its top-left corner."""
    folder.mkdir()
    for f in range(frames):
        image = np.zeros((*SIZE, 3), np.uint8)
        for path in paths:
            x, y = path(f)
            image[y : y + 14, x : x + 14] = 255
        cv2.imwrite(str(folder / f"{f:03d}.png"), image)
    return folder


def test_each_camera_keeps_its_own_ids_in_batched_ticks(tmp_path, objects_task):
    frames = 12
    a = write_squares(tmp_path / "a", frames, [lambda f: (4 + 6 * f, 40)])  # one square moving right
    b = write_squares(tmp_path / "b", frames, [lambda f: (20, 2 + 5 * f), lambda f: (110 - 6 * f, 70)])  # two
    engine = SquareFinder(objects_task)
    sources = [open_source(a), open_source(b)]
    sinks = [Collect(), Collect()]
    trackings = [SourceTracking([objects_task], "bytetrack") for _ in sources]
    try:
        stats = run_multicamera(engine, sources, sinks, report=None, trackings=trackings)  # type: ignore[arg-type]
    finally:
        for source in sources:
            source.close()
    assert [s.frames for s in stats.sources] == [frames, frames]
    assert max(engine.batches) == 2  # frames of both cameras went through one run
    last_a, last_b = sinks[0].objects[-1], sinks[1].objects[-1]
    assert last_a.track_ids.tolist() == [0]  # camera a's only object is its object 0 ...
    assert sorted(last_b.track_ids.tolist()) == [0, 1]  # ... though camera b's ids 0 and 1 ran beside it
    by_id: dict[int, list[np.ndarray]] = {}
    for found in sinks[1].objects:
        for box, track in zip(found.boxes, found.track_ids):
            if track >= 0:
                by_id.setdefault(int(track), []).append(box)
    lefts = {track: {float(box[0]) for box in boxes} for track, boxes in by_id.items()}
    falling = [track for track, xs in lefts.items() if xs == {20.0}]
    assert len(falling) == 1 and len(lefts[1 - falling[0]]) > 5  # each id stayed on one of b's squares
