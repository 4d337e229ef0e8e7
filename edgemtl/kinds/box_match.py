"""Export parity for boxes: the exported file's final boxes matched one to one with PyTorch's.

Comparing the (N, K) outputs row by row would fail on a harmless reordering (two scores equal to 1e-7 swap
ranks) and pass nothing more. Instead, per frame, each box PyTorch kept is matched to an unused box the file
kept of the same class, overlapping it by IoU ≥ `MIN_IOU` with a score within `SCORE_TOLERANCE`. A box left
unmatched on either side fails parity, unless its score is within the tolerance of a cut that may fall
either way by float error: the score threshold, or the K-th score when K boxes were kept.

NumPy only (the kinds are imported where PyTorch is not).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MIN_IOU = 0.99
SCORE_TOLERANCE = 1e-4


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    # two identical zero-size boxes are the same box
    return np.where(union > 0, inter / np.maximum(union, 1e-12), (np.abs(boxes - box).max(axis=1) == 0) * 1.0)


def _kept(outputs: Mapping[str, np.ndarray], row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    count = int(np.asarray(outputs["count"]).reshape(-1)[row])
    boxes = np.asarray(outputs["boxes"][row, :count], np.float64)
    return boxes, np.asarray(outputs["scores"][row, :count], np.float64), np.asarray(outputs["classes"][row, :count])


def match_boxes(
    ours: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], score_threshold: float
) -> tuple[float, float, float]:
    """(share of boxes matched, the largest score difference and the smallest IoU among matched pairs) over
    every frame of the two sets of outputs by field (boxes, scores, classes, count); share 1.0 when no box
    was kept on either side. Boxes at a cut that float error may move (see the module) are not counted."""
    matched = total = 0
    worst_score, worst_iou = 0.0, 1.0
    k = np.asarray(ours["boxes"]).shape[1]
    for row in range(len(np.asarray(ours["count"]).reshape(-1))):
        mine, theirs = _kept(ours, row), _kept(reference, row)
        used = np.zeros(len(theirs[0]), bool)
        mine_used = np.zeros(len(mine[0]), bool)
        for i, (box, score, cls) in enumerate(zip(*mine)):
            if not len(theirs[0]):
                break
            fits = (theirs[2] == cls) & ~used & (np.abs(theirs[1] - score) <= SCORE_TOLERANCE)
            iou = np.where(fits, _iou(box, theirs[0]), -1.0)
            best = int(np.argmax(iou))
            if iou[best] >= MIN_IOU:
                used[best] = mine_used[i] = True
                worst_score = max(worst_score, float(abs(theirs[1][best] - score)))
                worst_iou = min(worst_iou, float(iou[best]))
        matched += int(mine_used.sum())
        total += int(mine_used.sum())
        for (_, scores, _), taken in ((mine, mine_used), (theirs, used)):
            cuts = [score_threshold] + ([float(scores[-1])] if len(scores) == k else [])
            for score in scores[~taken]:
                total += not any(abs(score - cut) <= SCORE_TOLERANCE for cut in cuts)
    return (matched / total if total else 1.0), worst_score, worst_iou
