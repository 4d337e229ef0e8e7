"""COCO box scores of a detection task, computed by pycocotools (not hand-written): mAP@0.5:0.95 (the
headline), mAP@0.5, mAP@0.75 and AP per class.

The meter takes what `Detection.scored` packs from the graph's outputs, (N, K, 7) rows [x1, y1, x2, y2,
score, class, kept], and the dataset's (N, MAX_BOXES, 5) targets. Unlabelled images (NaN targets) are
skipped whole; an image labelled with no objects counts, so every box predicted on it is a false positive.
A model that finds nothing scores 0 (pycocotools cannot load an empty result list: that case is answered
here); with no object labelled at all, the scores are NaN (there is nothing to find).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, ClassVar

import numpy as np

from edgemtl.kinds.boxes import labelled_images, objects_of
from edgemtl.kinds.scores import TaskMeter

MAX_DETECTIONS = 100  # COCO's own limit per image, the largest of its maxDets


class DetectionMeter(TaskMeter):
    primary: ClassVar[str] = "map"

    def __init__(self, task: Any) -> None:
        super().__init__(task)
        self.truths: list[np.ndarray] = []  # per labelled image: (M, 5) class, box
        self.found: list[np.ndarray] = []  # per labelled image: (D, 6) box, score, class

    def update(self, predicted: np.ndarray, target: np.ndarray) -> None:
        predicted, target = np.asarray(predicted, np.float32), np.asarray(target, np.float32)
        for rows, truth in zip(predicted[labelled_images(target)], target[labelled_images(target)]):
            kept = rows[rows[:, 6] > 0][:MAX_DETECTIONS]
            self.truths.append(objects_of(truth))
            self.found.append(kept[:, :6])

    def compute(self) -> dict[str, float]:
        names = self.task.classes
        nan = {"map": float("nan"), "map_50": float("nan"), "map_75": float("nan")}
        nan.update({f"ap_{name}": float("nan") for name in names})
        objects = sum(len(t) for t in self.truths)
        if not objects:
            return nan
        if not sum(len(f) for f in self.found):
            present = {int(c) for truth in self.truths for c in truth[:, 0]}
            zero = {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
            return {**zero, **{f"ap_{n}": 0.0 if i in present else float("nan") for i, n in enumerate(names)}}
        return self._coco()

    def _coco(self) -> dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        images, annotations, results = [], [], []
        for index, (truth, found) in enumerate(zip(self.truths, self.found)):
            images.append({"id": index})
            for c, x1, y1, x2, y2 in truth.tolist():
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": index,
                        "category_id": int(c),
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
            for x1, y1, x2, y2, score, c in found.tolist():
                results.append(
                    {"image_id": index, "category_id": int(c), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
                )
        categories = [{"id": i, "name": name} for i, name in enumerate(self.task.classes)]
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and summary
            truth = COCO()
            truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
            truth.createIndex()
            evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
            evaluation.params.maxDets = [1, 10, MAX_DETECTIONS]
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        stats = evaluation.stats
        scores = {"map": _score(stats[0]), "map_50": _score(stats[1]), "map_75": _score(stats[2])}
        precision = evaluation.eval["precision"][:, :, :, 0, -1]  # (IoU thresholds, recall, class), all areas
        for index, name in enumerate(self.task.classes):
            values = precision[:, :, index]
            scores[f"ap_{name}"] = float(values[values > -1].mean()) if (values > -1).any() else float("nan")
        return scores


def _score(value: float) -> float:
    return float(value) if value >= 0 else float("nan")  # pycocotools' -1: nothing to score
