"""`select_boxes`, where the detection contract names it. It lives in edgemtl.kinds.box_select, beside the
detection kind's loss: the kind's postprocessing calls it, and the kinds sit below the model in the layers."""

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
