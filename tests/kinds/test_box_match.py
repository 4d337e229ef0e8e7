"""Export parity for boxes: matched one to one by class, IoU and score, whatever their order."""

from __future__ import annotations

import numpy as np

from edgemtl.kinds.box_match import match_boxes


def _outputs(rows, k=4):
    """rows: per frame, [(x1, y1, x2, y2, score, class)] → the four outputs, padded to k."""
    boxes, scores = np.zeros((len(rows), k, 4), np.float32), np.zeros((len(rows), k), np.float32)
    classes, count = np.zeros((len(rows), k), np.int64), np.zeros(len(rows), np.int64)
    for i, frame in enumerate(rows):
        for j, (*box, score, cls) in enumerate(frame):
            boxes[i, j], scores[i, j], classes[i, j] = box, score, cls
        count[i] = len(frame)
    return {"boxes": boxes, "scores": scores, "classes": classes, "count": count}


A, B = (0, 0, 10, 10, 0.9, 0), (20, 20, 40, 40, 0.8, 1)


def test_the_same_boxes_in_another_order_match():
    share, score, iou = match_boxes(_outputs([[A, B]]), _outputs([[B, A]]), 0.25)
    assert share == 1.0 and score == 0 and iou == 1.0


def test_a_moved_box_another_class_or_score_does_not_match():
    moved = (0, 0, 10, 11, 0.9, 0)  # IoU 0.91: one pair matched, one box left over on each side
    assert match_boxes(_outputs([[A, B]]), _outputs([[moved, B]]), 0.25)[0] == 1 / 3
    other = (0, 0, 10, 10, 0.9, 1)
    assert match_boxes(_outputs([[A]]), _outputs([[other]]), 0.25)[0] == 0.0
    lower = (0, 0, 10, 10, 0.8998, 0)
    assert match_boxes(_outputs([[A]]), _outputs([[lower]]), 0.25)[0] == 0.0


def test_a_missing_box_fails_unless_it_sits_at_a_cut():
    assert match_boxes(_outputs([[A, B]]), _outputs([[A]]), 0.25)[0] == 0.5
    at_threshold = (20, 20, 40, 40, 0.25003, 1)
    assert match_boxes(_outputs([[A, at_threshold]]), _outputs([[A]]), 0.25)[0] == 1.0
    assert match_boxes(_outputs([[]]), _outputs([[]]), 0.25)[0] == 1.0
