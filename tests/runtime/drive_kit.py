"""A drive whose objects' identities are known, and a detector that sees them: for end-to-end tests of boxes and
track ids (the real-browser viewer test, tests/cli/test_browser.py).

The drive: flat squares on a dark road, in two lanes. A person crosses the upper lane and leaves; a second
person enters it after a gap; a cone creeps along the lower lane the whole time. `truth(frame)` says where
each object is, by id, so a test can tell whether a track id follows its object.

The detector: a random-weight nano whose detection head alone is trained, on frozen encoder features, with
the project's own detection loss, on still scenes of the same squares: a few seconds on a 2-core CPU, and it
boxes the drive's objects at scores of about 0.7-0.95 (a whole training run takes a minute for less).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgemtl.tasks import TaskSpec
from tests.runtime.objects_kit import OBJECTS_TASK

INPUT = (64, 96)  # the model's (height, width)
FRAME = (192, 288)  # the drive's frames: the model's aspect, 3x its size (the runtime resizes)
FPS = 25.0
BACKGROUND = (45, 45, 45)  # BGR, dark: the boxes' colours (a light yellow, a purple) stand out from it
FILL = {0: (235, 235, 235), 1: (200, 90, 30)}  # cone: white, person: blue (BGR); class ids of OBJECTS_TASK
CONE, PERSON = 0, 1


@dataclass(frozen=True)
class Mover:
    """A square of `size` pixels whose left edge starts at `x` in frame `start`, moving `vx` pixels a frame."""

    id: int
    cls: int
    y: int
    x: float
    vx: float
    start: int = 0
    size: int = 42

    def box(self, frame: int) -> tuple[float, float, float, float] | None:
        """The part in view (x1, y1, x2, y2) in frame pixels, or None when it is out of view."""
        if frame < self.start:
            return None
        x1 = self.x + self.vx * (frame - self.start)
        left, right = max(0.0, x1), min(float(FRAME[1]), x1 + self.size)
        if right - left < 1:
            return None
        return left, float(self.y), right, float(self.y + self.size)


#: 12 s at 25 FPS: the first person has left the upper lane by frame 185, the second enters it at frame 190.
MOVERS = (
    Mover(1, PERSON, y=30, x=10, vx=1.5),
    Mover(2, CONE, y=110, x=235, vx=-0.8),
    Mover(3, PERSON, y=30, x=-30, vx=1.5, start=190),
)
FRAMES = 300


def truth(frame: int) -> dict[int, tuple[int, tuple[float, float, float, float]]]:
    """Object id → (class id, box of the part in view) of the objects in view in `frame`."""
    return {m.id: (m.cls, box) for m in MOVERS if (box := m.box(frame)) is not None}


def paint(size: tuple[int, int], objects: list[tuple[int, tuple[float, ...]]], seed: int) -> np.ndarray:
    """A BGR frame: the dark road with a little sensor noise, each (class id, box) a filled square."""
    image = np.full((*size, 3), BACKGROUND, np.uint8)
    image += np.random.default_rng(seed).integers(0, 8, image.shape, dtype=np.uint8)
    for cls, (x1, y1, x2, y2) in objects:
        cv2.rectangle(image, (round(x1), round(y1)), (round(x2) - 1, round(y2) - 1), FILL[cls], cv2.FILLED)
    return image


def write_drive(path: Path, frames: int = FRAMES) -> Path:
    """The drive as an MJPEG AVI at `FPS`."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (FRAME[1], FRAME[0]))
    for i in range(frames):
        writer.write(paint(FRAME, list(truth(i).values()), seed=i))
    writer.release()
    return path


def _still_scene(rng: np.random.Generator) -> list[tuple[int, tuple[float, float, float, float]]]:
    """Up to two squares of either class at the model's size, anywhere, cut by the frame's sides as they enter."""
    height, width = INPUT
    objects = []
    for _ in range(int(rng.integers(0, 3))):
        side = float(rng.uniform(0.18, 0.28) * height)
        x, y = float(rng.uniform(-side / 2, width - side / 2)), float(rng.uniform(0, height - side))
        box = (max(0.0, x), y, min(float(width), x + side), y + side)
        if box[2] - box[0] >= side / 3:
            objects.append((int(rng.integers(2)), box))
    return objects


def train_detector(path: Path, scenes: int = 192, steps: int = 300) -> Path:
    """Export a nano whose detection head ("objects": cone, person, robot) learnt the squares: up to 4 boxes a
    frame, scored 0.5 or more."""
    import torch

    # The drive's objects never overlap: suppression at a low IoU drops a looser second box of one object.
    selection = {"max_detections": 4, "score_threshold": 0.5, "iou_threshold": 0.3}
    task = TaskSpec(OBJECTS_TASK.name, OBJECTS_TASK.kind, OBJECTS_TASK.classes, extra=selection)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: two threads on a busy 2-core machine wait at their barriers (100x slower)
    try:
        return _train_head(task, path, scenes, steps)
    finally:
        torch.set_num_threads(threads)


def _train_head(task: TaskSpec, path: Path, scenes: int, steps: int) -> Path:
    import torch

    from edgemtl.deploy import export_onnx
    from edgemtl.kinds.boxes import pack_boxes
    from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, Preprocess, create_model
    from edgemtl.train import Checkpoint
    from edgemtl.train.losses import task_loss

    rng = np.random.default_rng(0)
    layouts = [_still_scene(rng) for _ in range(scenes)]
    images = np.stack([paint(INPUT, objects, seed=i) for i, objects in enumerate(layouts)])
    targets = torch.from_numpy(np.stack([pack_boxes(objects) for objects in layouts]))
    torch.manual_seed(0)
    model = create_model("nano", (task,)).eval()
    with torch.no_grad():
        features = model.forward_features(Preprocess(DEFAULT_MEAN, DEFAULT_STD)(torch.from_numpy(images)))
    head = model.heads[task.name].train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(0, scenes, (16,), generator=generator)
        loss = task_loss(task, head([f[batch] for f in features]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    checkpoint = Checkpoint("nano", (task,), INPUT, DEFAULT_MEAN, DEFAULT_STD, model.state_dict())
    export_onnx(checkpoint, path, overwrite=True)
    return path
