"""An in-graph overlay is checked as the mask it is drawn from: its pixels must agree (issue 24: an early
checkpoint's frame-sized export failed verification on a few near-tie pixels, max_abs_diff 112)."""

from __future__ import annotations

import numpy as np

from edgemtl.deploy.verify import MIN_AGREEMENT, _check
from edgemtl.runtime.metadata import OVERLAY_OUTPUT


def test_an_overlay_agrees_pixel_by_pixel_within_the_blends_rounding():
    reference = np.random.default_rng(0).integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    ours = reference.copy()
    ours[..., 0] = np.clip(ours[..., 0].astype(int) + 1, 0, 255)  # rounding of the blend: every pixel off by 1
    ours[0, 0, :5] = 255 - reference[0, 0, :5]  # 5 pixels (of 38,400) whose class flipped on a near tie
    check = _check(OVERLAY_OUTPUT, ours, reference)
    assert check.measure == "agreement" and check.ok and check.value == 1 - 5 / reference[..., 0].size
    ours[0, :2] = 255 - reference[0, :2]  # 320 pixels: a real disagreement
    check = _check(OVERLAY_OUTPUT, ours, reference)
    assert not check.ok and check.value < MIN_AGREEMENT
