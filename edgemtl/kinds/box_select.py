"""Final boxes from a detection head's candidates, inside the exported graph, with operators every consumer runs.

ONNX's NonMaxSuppression returns a data-dependent number of rows: OpenCV DNN has no such layer, TensorRT
runs it slowly or not at all, and ONNX Runtime's TensorRT provider cuts the graph there. `select_boxes`
gets greedy class-aware NMS from static-shape operators only (TopK, Gather, Min/Max, Mul, ReduceMax,
comparisons, MatMul; the full list is in docs/export.md), so a file hands every consumer the same fixed-size
outputs, and no host writes NMS again:

1. The `candidates` highest (anchor, class) scores, by TopK over the flattened (A × C) scores: a box may
   stand for several classes, each suppressed only by boxes of its own class (as torchvision's batched NMS).
   With several classes, a ReduceMax and a TopK over the A anchors first keep the M anchors of highest best
   score, and the TopK runs over their M × C scores only: the same M pairs (an anchor outside those M has a
   best score no higher than M others' best ones, so none of its pairs can outrank all of those M pairs).
   On a 3-class head of 15360 anchors (384×640 at stride 4) that TopK over 46080 values was the costliest
   node of the selection; ONNX Runtime took 0.13 ms for it alone against 0.09 + 0.01 ms for the two. The
   anchor TopK runs unsorted (the pair TopK orders what it keeps): ONNX Runtime's CPU kernel then selects
   without its heap (0.08 against 0.15 ms for 400 of 15360 values, timed alone on the loaded 2-core VM).
   A detection head that decodes late (`select_candidates`, what the exported graph runs: edgemtl.kinds.
   box_decode.DetectionParts) ranks by its raw class logits, as monotonic in the score as the sigmoid is: only
   the M chosen pairs pass through the sigmoid, and only the M candidates' boxes are decoded.
2. Which pairs overlap by IoU above the threshold (M × M, compared without a division), only within a class
   and only for a higher-ranked suppressor above the score threshold (one key per candidate says both).
3. Cluster-NMS (Zheng et al., "Enhancing Geometric Factors in Model Learning and Inference for Object
   Detection and Instance Segmentation", 2021): keep_j = max_{i<j, keep_i} IoU_ij <= t, iterated
   `iterations` times from "keep all". Each step is one (1 × M) · (M × M) MatMul per image (the number of kept
   boxes that suppress each box), ~10× faster in ONNX Runtime than a multiply and ReduceMax; the fixed point is
   exactly greedy NMS, reached after as many steps as the longest chain of boxes that suppress the next
   one. The default count is measured (docs/export.md): on 2000 synthetic scenes of 400 to 20000 candidates,
   random or clustered around a few objects as a dense head emits them, IoU thresholds 0.3 to 0.7, the
   fixed point came after at most 9 steps (mean 1 to 6); 12 leaves a margin. A contrived chain of boxes,
   each overlapping the next, needs as many steps as it is long: past 12, such a chain may lose a box.
4. The `max_detections` highest kept scores, by TopK again, sorted descending; rows past the count zero.

Greedy NMS over all candidates keeps, among the first M, exactly what greedy NMS over those M keeps (a box
is only suppressed by higher-scored ones), so the bound changes the result only when fewer than K boxes
survive among the M best candidates.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from edgemtl.errors import ConfigError

#: Unrolled Cluster-NMS steps, each one batched vector-matrix product (N × M × M); chosen by measurement (module doc).
DEFAULT_ITERATIONS = 12
#: The fewest candidates considered, whatever K: room for the duplicates suppression removes.
MIN_CANDIDATES = 256
#: TensorRT 10's TopK takes K below 3840 (onnx-tensorrt docs/operators.md): the candidate bound stays under it,
#: so ONNX Runtime's TensorRT provider can take the graph.
MAX_CANDIDATES = 3839


def candidate_count(max_detections: int, available: int) -> int:
    """How many candidates go into suppression: 4 K, at least `MIN_CANDIDATES`, at most what there is."""
    return max(1, min(available, MAX_CANDIDATES, max(4 * max_detections, MIN_CANDIDATES)))


def check_selection(max_detections: int, score_threshold: float, iou_threshold: float) -> None:
    """A ConfigError naming the bad setting: K must be a positive integer, both thresholds in [0, 1]."""
    if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections <= 0:
        raise ConfigError(f"max detections {max_detections!r}: expected a whole number of boxes, at least 1")
    if max_detections > MAX_CANDIDATES:
        raise ConfigError(f"max detections {max_detections}: expected at most {MAX_CANDIDATES} (TensorRT's TopK)")
    for name, value in (("score threshold", score_threshold), ("IoU threshold", iou_threshold)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} {value!r}: expected a number between 0 and 1")


def overlaps_above(boxes: Tensor, threshold: float) -> Tensor:
    """(N, M, 4) x1, y1, x2, y2 → (N, M, M) bool: IoU above `threshold`, without dividing.

    IoU = I / (a + b − I) > t  ⇔  I > t / (1 + t) · (a + b) for a non-empty union (an empty one has I = 0, as
    IoU 0 does): the scale goes on the M areas, and the M × M maps lose the union, its clamp, the Div and a
    clamp of the intersection: four of their sixteen operators, each an M² pass over memory."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0) * (threshold / (1.0 + threshold))
    width = torch.minimum(x2.unsqueeze(-1), x2.unsqueeze(-2)) - torch.maximum(x1.unsqueeze(-1), x1.unsqueeze(-2))
    height = torch.minimum(y2.unsqueeze(-1), y2.unsqueeze(-2)) - torch.maximum(y1.unsqueeze(-1), y1.unsqueeze(-2))
    # one clamp suffices: with width ≤ 0 the product is 0, with height < 0 it is negative, neither above a sum ≥ 0
    inter = width.clamp(min=0) * height
    return inter > area.unsqueeze(-1) + area.unsqueeze(-2)


def select_boxes(
    boxes: Tensor,
    scores: Tensor,
    max_detections: int,
    score_threshold: float,
    iou_threshold: float,
    iterations: int = DEFAULT_ITERATIONS,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Greedy class-aware NMS with fixed-size outputs.

    `boxes` (N, A, 4) float x1, y1, x2, y2; `scores` (N, A, C) per-class probabilities. A candidate counts
    when its score is at least `score_threshold`; a box is suppressed by a higher-scored box of its class
    that overlaps it by IoU above `iou_threshold`.

    Returns boxes (N, K, 4) float32, scores (N, K) float32, classes (N, K) int64, count (N,) int64 with
    K = `max_detections`: rows sorted by score descending, rows from `count` on all zero.
    """
    boxes = _float32(boxes)
    return select_candidates(
        scores, lambda index: take_rows(boxes, index), max_detections, score_threshold, iou_threshold, iterations
    )


def select_candidates(
    ranks: Tensor,
    boxes_at: Callable[[Tensor], Tensor],
    max_detections: int,
    score_threshold: float,
    iou_threshold: float,
    iterations: int = DEFAULT_ITERATIONS,
    to_scores: Callable[[Tensor], Tensor] | None = None,
    floor: float | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`select_boxes` for a head that decodes late: `ranks` (N, A, C) order the (anchor, class) pairs as
    their scores do, `to_scores` turns the chosen ones into scores (e.g. raw logits and torch.sigmoid, which
    is monotonic: the TopK reads logits and only the M candidates pass through the sigmoid; None: `ranks`
    are the scores), and `boxes_at` gives the (N, M, 4) boxes of (N, M) anchor indices, so only the M
    candidates' boxes are decoded. The same outputs as `select_boxes` on the decoded boxes and scores.

    `floor`: a rank below which no score reaches the threshold. The candidate TopK sees such ranks raised to it,
    all equal: they could never be kept, and ONNX Runtime's TopK (a heap) then skips them in one comparison
    each, where a long run of rising ranks (an untrained head's nearly equal logits) made it insert nearly
    every one (0.19 against 0.01 ms for 400 of 15 360, one thread)."""
    check_selection(max_detections, score_threshold, iou_threshold)
    batch, anchors, num_classes = ranks.shape
    ranks = _float32(ranks)
    taken = candidate_count(max_detections, anchors * num_classes)
    near = None
    if num_classes > 1 and taken < anchors:  # the M best pairs lie among the M best anchors (module doc)
        # unsorted: the next TopK orders the pairs, and ONNX Runtime's CPU TopK then skips its final sort
        _, near = _floored(ranks.amax(dim=2), floor).topk(taken, dim=1, sorted=False)  # (N, M) by best class
        ranks = take_rows(ranks, near)
        flat = ranks.reshape(batch, -1)
    else:
        flat = _floored(ranks.reshape(batch, -1), floor)
    top_ranks, top_index = flat.topk(taken, dim=1)  # (N, M), sorted descending
    top_scores = top_ranks if to_scores is None else to_scores(top_ranks)
    anchor = torch.div(top_index, num_classes, rounding_mode="floor")
    classes = top_index - anchor * num_classes  # the remainder, without a Mod operator
    if near is not None:  # positions among the M anchors → anchor indices
        anchor = take_rows(near.unsqueeze(-1), anchor).squeeze(-1)
    top_boxes = _float32(boxes_at(anchor))  # (N, M, 4)

    position = torch.arange(taken, device=ranks.device)
    earlier = position.unsqueeze(1) < position.unsqueeze(0)  # [i, j]: i ranks above j
    # Only candidates above the score threshold suppress, and only their own class: one key per candidate, its
    # class when above the threshold, else −1 − its rank (a key no other candidate has), so equal keys say both.
    # A step then need not zero the candidates below the threshold again: one product with `valid` at the end
    # does, and the kept set is the same (their rows suppress nothing, their own counts are not read).
    above = top_scores >= score_threshold
    key = torch.where(above, classes, -1 - position)
    # (N, M, M) [i, j]: 1 where i would suppress j (higher score, same class, IoU above the threshold). Combined
    # as booleans and cast once after the TopK: a Cast on the constant `earlier` would sit outside what an
    # fp16 file keeps in fp32 (edgemtl.deploy.precision.selection_nodes) and break the converted graph.
    same = key.unsqueeze(2) == key.unsqueeze(1)
    suppresses = (overlaps_above(top_boxes, iou_threshold) & same & earlier).float()
    valid = above.float()
    keep = valid.unsqueeze(1)  # (N, 1, M)
    for _ in range(iterations):  # unrolled: a fixed number of static steps, no Loop
        # how many kept boxes suppress each box: one batched (1 × M) · (M × M) MatMul, counts exact in float
        keep = (torch.matmul(keep, suppresses) < 0.5).float()
    keep = keep.squeeze(1) * valid

    kept_scores = top_scores * keep - (1.0 - keep)  # dropped candidates rank below every kept one
    k = min(max_detections, taken)
    best, order = kept_scores.topk(k, dim=1)  # (N, k)
    count = keep.sum(dim=1).clamp(max=k).long()
    present = (best >= 0).float()  # kept rows first, then dropped ones: zero them
    out_scores = best.clamp(min=0) * present
    out_boxes = take_rows(top_boxes, order) * present.unsqueeze(-1)
    out_classes = take_rows(classes, order) * present.long()
    if k < max_detections:  # fewer candidates than K: pad the fixed outputs with zero rows
        pad = max_detections - k
        out_boxes = torch.nn.functional.pad(out_boxes, (0, 0, 0, pad))
        out_scores = torch.nn.functional.pad(out_scores, (0, pad))
        out_classes = torch.nn.functional.pad(out_classes, (0, pad))
    return out_boxes, out_scores, out_classes, count


def _floored(ranks: Tensor, floor: float | None) -> Tensor:
    return ranks if floor is None else ranks.clamp(min=floor)


def _float32(values: Tensor) -> Tensor:
    """float32, without a Cast node when it is already: the fp16 converter re-types a Cast's output but not
    its target type, and onnx.checker then refuses the graph."""
    return values if values.dtype == torch.float32 else values.float()


def take_rows(rows: Tensor, index: Tensor) -> Tensor:
    """rows (N, A, ...) at index (N, M) → (N, M, ...), per image: one Gather on the flattened rows.

    Not GatherElements (torch.gather): onnx's reference evaluator runs that through np.choose, which takes
    at most 64 rows."""
    batch, length = rows.shape[:2]
    offset = torch.arange(batch, device=rows.device).unsqueeze(1) * length
    flat = rows.reshape(batch * length, *rows.shape[2:]).index_select(0, (index + offset).reshape(-1))
    return flat.reshape(*index.shape, *rows.shape[2:])
