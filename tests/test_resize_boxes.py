"""restore_boxes: boxes in the model input's pixels back in the frame's, under each resize policy, checked
against where `resize_frame` put the frame's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.resize import fit, resize_frame, restore_boxes


def _bright_box(where, box):
    """The frame's white rectangle `box` (x1, y1, x2, y2) as the model sees it: its bounds in the input."""
    frame = np.zeros((*where.frame_size, 3), np.uint8)
    x1, y1, x2, y2 = box
    frame[y1:y2, x1:x2] = 255
    seen = resize_frame(frame, where)[..., 0] > 127
    ys, xs = np.nonzero(seen)
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "crop"])
def test_a_box_goes_back_where_the_frame_had_it(policy):
    where = fit((120, 200), (40, 40), policy)
    box = (80, 40, 140, 100)  # inside the crop's centre too
    restored = restore_boxes(_bright_box(where, box), where)
    np.testing.assert_allclose(restored[0], box, atol=6)  # one input pixel is 3 to 5 frame pixels here


def test_stretch_scales_each_axis():
    where = fit((64, 96), (32, 32), "stretch")
    np.testing.assert_allclose(restore_boxes(np.array([[1, 2, 10, 20]]), where), [[3, 4, 30, 40]])


def test_letterbox_removes_the_padding_offset():
    where = fit((100, 200), (64, 64), "letterbox")  # content 32 rows high, 16 rows of padding above
    assert where.target == (16, 0, 32, 64)
    np.testing.assert_allclose(restore_boxes(np.array([[0, 16, 64, 48]]), where), [[0, 0, 200, 100]])


def test_boxes_are_clipped_to_the_frame_and_none_stay_none():
    where = fit((100, 200), (64, 64), "letterbox")
    np.testing.assert_allclose(restore_boxes(np.array([[-5, 0, 70, 10]]), where), [[0, 0, 200, 0]])
    assert restore_boxes(np.zeros((0, 4)), where).shape == (0, 4)
    same = fit((32, 32), (32, 32), "letterbox")
    np.testing.assert_array_equal(restore_boxes(np.array([[1, 2, 3, 4]]), same), [[1, 2, 3, 4]])
