"""The runtime's overlay and colours: the mask painted, the input kept, text only where asked."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.runtime import (
    ClassificationResult,
    Prediction,
    SegmentationResult,
    class_colors,
    render_overlay,
)
from edgemtl.tasks import NAVIGATION_TASKS

SCENE, SEGMENTATION = NAVIGATION_TASKS


# --- overlay and colours --------------------------------------------------------------------------------


def test_render_overlay_paints_the_mask_and_keeps_the_input():
    frame = np.full((96, 128, 3), 100, np.uint8)
    original = frame.copy()
    mask = np.zeros((96, 128), np.uint8)
    mask[60:80, 90:110] = 3  # obstacle square, away from the text box in the top-left corner
    probabilities = np.array([0.1, 0.7, 0.1, 0.1], np.float32)
    prediction = Prediction(
        {
            "scene": ClassificationResult(SCENE, 1, probabilities),
            "segmentation": SegmentationResult(SEGMENTATION, mask),
        }
    )
    overlay = render_overlay(frame, prediction)

    assert overlay is not frame
    assert overlay.shape == frame.shape and overlay.dtype == frame.dtype
    np.testing.assert_array_equal(frame, original)

    color = class_colors(4)[3].astype(np.float64)
    expected = (0.5 * 100 + 0.5 * color).astype(np.uint8)
    square = overlay[60:80, 90:110]
    assert (square == expected).all()
    assert (square != 100).any(axis=-1).all(), "every masked pixel changed"

    # Background (class 0) is left clear: everything below the text box and outside the square.
    background = np.ones((96, 128), bool)
    background[:40] = False
    background[60:80, 90:110] = False
    np.testing.assert_array_equal(overlay[background], original[background])
    # The text block (the scene label) darkened the top-left corner.
    assert (overlay[:40, :40] != 100).any()


def test_render_overlay_without_text_leaves_background_untouched():
    frame = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 1
    overlay = render_overlay(frame, Prediction({"segmentation": SegmentationResult(SEGMENTATION, mask)}))
    np.testing.assert_array_equal(overlay[mask == 0], frame[mask == 0])
    assert (overlay[mask == 1] != frame[mask == 1]).any()


@pytest.mark.parametrize("n", [1, 2, 4, 8, 9, 13, 20])
def test_class_colors(n):
    colors = class_colors(n)
    assert colors.shape == (n, 3) and colors.dtype == np.uint8
    np.testing.assert_array_equal(colors, class_colors(n))
    assert len(np.unique(colors, axis=0)) == n, "colours are distinct"
    # Growing the class count keeps the colours of the existing classes.
    np.testing.assert_array_equal(class_colors(20)[:n], colors)
