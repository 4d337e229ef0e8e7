"""`edgemtl predict` on a model with boxes: each frame's objects in predictions.jsonl (with the image id the
COCO files use), the task's boxes as a COCO results file pycocotools reads, and boxes on the overlays (an
upscaled small frame's too). The engine is a stand-in that finds white squares (no detection model needed)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgemtl.commands.predict import predict_source
from edgemtl.kinds.detection import DetectionResult
from edgemtl.kinds.objects import Objects, object_colors
from edgemtl.runtime.results import Prediction
from tests.runtime.objects_kit import CLASSES


class SquareFinder:
    def __init__(self, task) -> None:
        self.task, self.tasks = task, (task,)

    def predict(self, image: np.ndarray) -> Prediction:
        _, _, stats, _ = cv2.connectedComponentsWithStats((image[:, :, 0] > 128).astype(np.uint8))
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h, _ in stats[1:]], np.float32).reshape(-1, 4)
        scores = np.full(len(boxes), 0.75, np.float32)
        found = Objects(boxes, scores, np.full(len(boxes), 2, np.int64), CLASSES)  # robots
        return Prediction({self.task.name: DetectionResult(self.task, found)})


@pytest.fixture
def squares(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, count in enumerate([1, 0, 2]):  # frame 1 holds no object
        image = np.zeros((60, 80, 3), np.uint8)
        for k in range(count):
            image[10 + 20 * k : 24 + 20 * k, 30:44] = 255
        cv2.imwrite(str(folder / f"f{i}.png"), image)
    return folder


def test_predict_writes_objects_coco_results_and_boxes_on_the_overlays(tmp_path, squares, objects_task):
    out = tmp_path / "out"
    summary = predict_source(SquareFinder(objects_task), squares, out, save_masks=True)
    assert summary.frames == 3
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(line["frame"], line["image_id"], len(line["objects"]["objects"])) for line in lines] == [
        ("f0", 0, 1),
        ("f1", 1, 0),
        ("f2", 2, 2),
    ]
    first = {"class": "robot", "class_id": 2, "score": 0.75, "box": [30, 10, 44, 24]}
    assert lines[0]["objects"]["objects"] == [first]
    results = json.loads((out / "objects.coco.json").read_text())
    assert [(r["image_id"], r["category_id"], r["bbox"]) for r in results] == [
        (0, 3, [30.0, 10.0, 14.0, 14.0]),
        (2, 3, [30.0, 10.0, 14.0, 14.0]),
        (2, 3, [30.0, 30.0, 14.0, 14.0]),
    ]
    categories = json.loads((out / "objects.categories.json").read_text())
    assert categories == [{"id": 1, "name": "cone"}, {"id": 2, "name": "person"}, {"id": 3, "name": "robot"}]
    robot = object_colors(len(CLASSES))[2]
    overlay = cv2.imread(str(out / "overlays" / "f0.png"))
    assert (overlay[17, 30] == robot).all()  # the box's left edge, in the robot's colour
    readable = cv2.imread(str(out / "overlays" / "readable" / "f0.png"))  # 60 px high: drawn 8x larger too
    assert readable.shape[:2] == (480, 640) and (readable[17 * 8, 30 * 8] == robot).all()


def test_the_coco_results_load_in_pycocotools(tmp_path, squares, objects_task):
    coco = pytest.importorskip("pycocotools.coco")
    out = tmp_path / "out"
    predict_source(SquareFinder(objects_task), squares, out)
    ground_truth = coco.COCO()
    ground_truth.dataset = {
        "images": [{"id": i, "width": 80, "height": 60} for i in range(3)],
        "annotations": [],
        "categories": json.loads((out / "objects.categories.json").read_text()),
    }
    ground_truth.createIndex()
    loaded = ground_truth.loadRes(str(out / "objects.coco.json"))
    assert len(loaded.getAnnIds()) == 3
    assert sorted({a["image_id"] for a in loaded.loadAnns(loaded.getAnnIds())}) == [0, 2]
