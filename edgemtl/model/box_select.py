"""`select_boxes` where the model's users look for it; it lives in edgemtl.kinds.box_select because the
detection kind's postprocessing (edgemtl.kinds.detection) calls it, and the kinds sit below the model."""

from edgemtl.kinds.box_select import (
    DEFAULT_ITERATIONS,
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    candidate_count,
    check_selection,
    pairwise_iou,
    select_boxes,
)

__all__ = [
    "DEFAULT_ITERATIONS",
    "MAX_CANDIDATES",
    "MIN_CANDIDATES",
    "candidate_count",
    "check_selection",
    "pairwise_iou",
    "select_boxes",
]
