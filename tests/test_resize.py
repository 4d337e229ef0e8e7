"""The resize policy (edgemtl.resize): where a frame's pixels go, the same in OpenCV and as graph matrices,
and how a mask comes back into the frame's own coordinates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgemtl.errors import ConfigError
from edgemtl.resize import PAD_VALUE, POLICIES, check_policy, fit, resize_frame, restore_boxes, restore_mask

FRAME, INPUT = (48, 80), (32, 32)  # a 5:3 frame into a square model: every policy differs


def test_boxes_per_policy():
    assert fit(FRAME, INPUT, "stretch").target == (0, 0, 32, 32)
    letterbox = fit(FRAME, INPUT, "letterbox")
    assert letterbox.source == (0, 0, 48, 80) and letterbox.target == (6, 0, 19, 32)  # 48*0.4=19.2 rows, centred
    crop = fit(FRAME, INPUT, "crop")
    assert crop.source == (0, 16, 48, 48) and crop.target == (0, 0, 32, 32)  # the centre square


def test_letterbox_pads_and_crop_cuts():
    frame = np.full((*FRAME, 3), 200, np.uint8)
    frame[:, :16] = 10  # a left border the crop must not see
    boxed = resize_frame(frame, fit(FRAME, INPUT, "letterbox"))
    assert (boxed[:6] == PAD_VALUE).all() and (boxed[25:] == PAD_VALUE).all() and (boxed[7:24, 8:] == 200).all()
    cropped = resize_frame(frame, fit(FRAME, INPUT, "crop"))
    assert (cropped == 200).all()


@pytest.mark.parametrize("policy", POLICIES)
def test_mask_maps_back_to_the_frame(policy):
    """A mask that marks the model input's left half comes back marking the frame's matching pixels."""
    where = fit(FRAME, INPUT, policy)
    mask = np.zeros(INPUT, np.uint8)
    mask[:, :16] = 1
    top, _, height, _ = where.target
    mask[:top] = mask[top + height :] = 7  # padding: must be cut away
    restored = restore_mask(mask, where)
    assert restored.shape == FRAME and 7 not in restored
    s_left, s_width = where.source[1], where.source[3]
    middle = s_left + s_width // 2
    assert (restored[:, : middle - 1] == 1).all() and (restored[:, middle + 1 :] == 0).all()
    if policy == "crop":  # the unseen borders take the nearest seen column's class
        assert (restored[:, :s_left] == 1).all() and (restored[:, s_left + s_width :] == 0).all()


def test_unknown_policy_names_the_closest():
    with pytest.raises(ConfigError, match=r"unknown resize policy 'letterbx'.*did you mean 'letterbox'"):
        check_policy("letterbx")


def test_same_size_is_untouched():
    frame = np.zeros((*INPUT, 3), np.uint8)
    assert resize_frame(frame, fit(INPUT, INPUT, "letterbox")) is frame
    assert cv2.countNonZero(restore_mask(np.ones(INPUT, np.uint8), fit(INPUT, INPUT, "crop"))) == 32 * 32


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "crop"])
def test_boxes_go_back_to_the_frame_s_pixels(policy):
    """A box in the frame, carried into the input as `resize_frame` carries its pixels, comes back where it was
    (clipped to the frame where a crop cut it)."""
    where = fit((480, 640), (96, 160), policy)
    top, left, height, width = where.source
    t_top, t_left, t_height, t_width = where.target
    frame_boxes = np.array([[100, 50, 300, 400], [0, 0, 640, 480]], np.float32)
    scale = np.array([t_width / width, t_height / height] * 2, np.float32)
    in_input = (frame_boxes - [left, top, left, top]) * scale + [t_left, t_top, t_left, t_top]
    back = restore_boxes(in_input, where)
    np.testing.assert_allclose(back, frame_boxes, atol=1e-3)
    assert restore_boxes(np.zeros((0, 4), np.float32), where).shape == (0, 4)
