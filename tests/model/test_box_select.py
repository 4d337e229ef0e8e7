"""select_boxes: greedy class-aware NMS from static-shape operators, checked against a plain greedy NMS written
here (torchvision is not a dependency), and its exported graph run by ONNX Runtime, onnx's reference evaluator
and OpenCV DNN with equal results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgemtl.errors import ConfigError
from edgemtl.kinds.box_select import DEFAULT_ITERATIONS, candidate_count, select_boxes, select_candidates, take_rows
from edgemtl.kinds.detection import logit_floor


def greedy_nms(
    boxes: np.ndarray, scores: np.ndarray, k: int, score_threshold: float, iou_threshold: float, candidates: int
):
    """The reference: (A, 4) boxes, (A, C) scores → [(score, class, anchor)] of greedy per-class NMS over the
    `candidates` best (anchor, class) scores, best first, at most k. Candidates in score order; each kept one
    removes the later ones of its class it overlaps."""
    num_classes = scores.shape[1]
    flat = scores.reshape(-1)
    order = np.argsort(-flat, kind="stable")[:candidates]
    order = order[flat[order] >= score_threshold]
    anchor, cls = order // num_classes, order % num_classes
    b = boxes[anchor].astype(np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    alive = np.ones(len(order), bool)
    kept: list[tuple[float, int, int]] = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        kept.append((float(flat[order[i]]), int(cls[i]), int(anchor[i])))
        if len(kept) == k:
            break
        width = np.clip(np.minimum(b[i, 2], b[:, 2]) - np.maximum(b[i, 0], b[:, 0]), 0, None)
        height = np.clip(np.minimum(b[i, 3], b[:, 3]) - np.maximum(b[i, 1], b[:, 1]), 0, None)
        inter = width * height
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        alive &= ~((iou > iou_threshold) & (cls == cls[i]))
    return kept


def random_scene(rng: np.random.Generator, anchors: int, classes: int, clustered: bool, size: float = 640.0):
    """Candidates as a dense head emits them (`clustered`: many jittered boxes around a few objects) or
    scattered uniformly; scores skewed low, as a sigmoid head's are."""
    if clustered:
        objects = int(rng.integers(3, 12))
        centres, sizes = rng.uniform(50, size - 50, (objects, 2)), rng.uniform(20, 200, (objects, 2))
        pick = rng.integers(0, objects, anchors)
        wh = sizes[pick] * rng.uniform(0.6, 1.4, (anchors, 2))
        xy = centres[pick] + rng.normal(0, 0.25, (anchors, 2)) * sizes[pick] - wh / 2
    else:
        xy, wh = rng.uniform(0, size, (anchors, 2)), rng.uniform(8, 160, (anchors, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return boxes, (rng.uniform(0, 1, (anchors, classes)) ** 3).astype(np.float32)


def select(boxes, scores, k=100, score_threshold=0.05, iou_threshold=0.5, **kwargs):
    out = select_boxes(
        torch.from_numpy(boxes)[None], torch.from_numpy(scores)[None], k, score_threshold, iou_threshold, **kwargs
    )
    return [t[0].numpy() for t in out]


def agrees(got, want) -> bool:
    _, scores, classes, count = got
    if count != len(want):
        return False
    return all(abs(scores[i] - s) < 1e-6 and classes[i] == c for i, (s, c, _) in enumerate(want))


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_matches_greedy_nms(clustered, iou_threshold):
    rng = np.random.default_rng(int(iou_threshold * 10) + clustered)
    for anchors, classes in ((400, 1), (600, 4)):
        for _ in range(4):
            boxes, scores = random_scene(rng, anchors, classes, clustered)
            want = greedy_nms(boxes, scores, 100, 0.05, iou_threshold, candidate_count(100, anchors * classes))
            got = select(boxes, scores, 100, 0.05, iou_threshold)
            assert agrees(got, want), (anchors, classes)
            kept_boxes = boxes[[a for _, _, a in want]]
            np.testing.assert_array_equal(got[0][: len(want)], kept_boxes)


@pytest.mark.parametrize(("threshold", "floor"), [(0.05, None), (0.8, logit_floor(0.8))])
@pytest.mark.parametrize("classes", [1, 3])
def test_ranking_logits_and_decoding_late_selects_the_same(classes, threshold, floor):
    """What the exported graph runs: the TopK reads raw logits (raised to a floor under the threshold's logit:
    the many that cannot make a box tie there), only the candidates pass through the sigmoid, only their boxes
    are decoded (here: looked up and counted); the same outputs as deciding on all."""
    rng = np.random.default_rng(5 + classes)
    scenes = [random_scene(rng, 900, classes, clustered=True) for _ in range(2)]
    boxes = torch.from_numpy(np.stack([b for b, _ in scenes]))
    scores = torch.from_numpy(np.stack([s for _, s in scenes])).clamp(1e-6, 1 - 1e-6)
    logits = torch.logit(scores.double()).float()
    decoded = []

    def boxes_at(index):
        decoded.append(index.shape)
        return take_rows(boxes, index)

    late = select_candidates(logits, boxes_at, 50, threshold, 0.5, to_scores=torch.sigmoid, floor=floor)
    early = select_boxes(boxes, torch.sigmoid(logits), 50, threshold, 0.5)
    valid = (torch.sigmoid(logits).amax(-1) >= threshold).sum(-1)
    assert floor is None or int(valid.max()) < candidate_count(50, 900 * classes), "some floored ranks are taken"
    assert decoded == [(2, candidate_count(50, 900 * classes))]
    assert int(early[3].min()) > 5, "the scenes keep boxes"
    for have, want in zip(late, early):
        torch.testing.assert_close(have, want, rtol=0, atol=0)


def test_one_iteration_is_fast_nms_and_misses_greedy():
    """Fast-NMS (one step) suppresses with boxes that were themselves suppressed: on dense clusters it drops
    boxes greedy NMS keeps, which is why the default iterates."""
    rng = np.random.default_rng(7)
    scenes = [random_scene(rng, 600, 1, clustered=True) for _ in range(6)]
    reference = [greedy_nms(b, s, 100, 0.05, 0.3, 400) for b, s in scenes]
    fast = [agrees(select(b, s, 100, 0.05, 0.3, iterations=1), want) for (b, s), want in zip(scenes, reference)]
    assert not all(fast)
    assert DEFAULT_ITERATIONS > 1


def test_shapes_order_padding_and_count():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [100, 100, 120, 130]], np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.1, 0.7], [0.02, 0.01]], np.float32)
    out_boxes, out_scores, out_classes, count = select(boxes, scores, k=5, score_threshold=0.05, iou_threshold=0.5)
    assert out_boxes.shape == (5, 4) and out_scores.shape == (5,) and out_classes.shape == (5,)
    assert out_boxes.dtype == np.float32 and out_scores.dtype == np.float32
    assert out_classes.dtype == np.int64 and count.dtype == np.int64
    assert int(count) == 3  # box 1 is suppressed by box 0; box 3 is below the score threshold
    np.testing.assert_allclose(out_scores, [0.9, 0.7, 0.1, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(out_classes, [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(out_boxes[:3], boxes[[0, 2, 2]])
    assert not out_boxes[3:].any()


def test_suppression_is_per_class():
    """Two boxes that overlap entirely both stay when their classes differ; of one class, only the best."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    differ = np.array([[0.9, 0.0], [0.0, 0.8]], np.float32)
    same = np.array([[0.9, 0.0], [0.8, 0.0]], np.float32)
    assert int(select(boxes, differ, k=4)[3]) == 2
    assert int(select(boxes, same, k=4)[3]) == 1


def test_thresholds():
    boxes = np.array([[0, 0, 10, 10], [0, 5, 10, 15], [30, 30, 40, 40]], np.float32)  # IoU(0, 1) = 1/3
    scores = np.array([[0.9], [0.6], [0.3]], np.float32)
    assert int(select(boxes, scores, k=4, score_threshold=0.5, iou_threshold=0.5)[3]) == 2
    assert int(select(boxes, scores, k=4, score_threshold=0.3, iou_threshold=0.5)[3]) == 3  # at least: kept
    assert int(select(boxes, scores, k=4, score_threshold=0.3, iou_threshold=0.3)[3]) == 2
    assert int(select(boxes, scores, k=4, score_threshold=0.95, iou_threshold=0.5)[3]) == 0


def test_count_is_capped_at_k_and_few_candidates_are_padded():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(6)], np.float32)
    scores = np.linspace(0.9, 0.4, 6, dtype=np.float32)[:, None]
    out_boxes, out_scores, _, count = select(boxes, scores, k=3)
    assert int(count) == 3 and out_boxes.shape == (3, 4)
    np.testing.assert_allclose(out_scores, scores[:3, 0])
    out_boxes, out_scores, _, count = select(boxes, scores, k=10)  # 6 candidates for 10 rows
    assert int(count) == 6 and out_boxes.shape == (10, 4) and not out_scores[6:].any()


def test_batch_images_are_independent():
    rng = np.random.default_rng(1)
    scenes = [random_scene(rng, 300, 3, clustered=True) for _ in range(3)]
    boxes = torch.from_numpy(np.stack([b for b, _ in scenes]))
    scores = torch.from_numpy(np.stack([s for _, s in scenes]))
    batched = select_boxes(boxes, scores, 50, 0.1, 0.5)
    for i, (b, s) in enumerate(scenes):
        alone = select(b, s, 50, 0.1, 0.5)
        for have, want in zip(batched, alone):
            np.testing.assert_array_equal(have[i].numpy(), want)


@pytest.mark.parametrize(
    ("k", "score", "iou"), [(0, 0.2, 0.5), (-3, 0.2, 0.5), (2.5, 0.2, 0.5), (10, -0.1, 0.5), (10, 0.2, 1.5)]
)
def test_bad_settings_are_one_line_errors(k, score, iou):
    boxes, scores = torch.zeros(1, 4, 4), torch.zeros(1, 4, 2)
    with pytest.raises(ConfigError) as error:
        select_boxes(boxes, scores, k, score, iou)
    assert "\n" not in str(error.value)


class Selector(torch.nn.Module):
    def forward(self, boxes: torch.Tensor, scores: torch.Tensor):
        return select_boxes(boxes, scores, 20, 0.1, 0.5)


@pytest.fixture(scope="module")
def exported_selector(tmp_path_factory):
    from edgemtl.deploy.onnx_export import DEFAULT_OPSET

    path = tmp_path_factory.mktemp("select") / "select.onnx"
    rng = np.random.default_rng(3)
    boxes, scores = random_scene(rng, 300, 3, clustered=True)
    example = (torch.from_numpy(np.stack([boxes] * 2)), torch.from_numpy(np.stack([scores] * 2)))
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.onnx.export(
        Selector().eval(), example, str(path), input_names=["boxes", "scores"],
        output_names=["boxes_out", "scores_out", "classes", "count"],
        dynamic_shapes={"boxes": {0: batch}, "scores": {0: batch}}, opset_version=DEFAULT_OPSET, dynamo=True,
        external_data=False,
    )  # fmt: skip
    return path


def test_exported_graph_has_only_static_operators(exported_selector):
    import onnx

    model = onnx.load(str(exported_selector))
    operators = {node.op_type for node in model.graph.node}
    assert not operators & {"NonMaxSuppression", "Loop", "If", "NonZero", "Scan", "Unique", "Compress"}, operators
    shapes = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert shapes["boxes_out"][1:] == [20, 4] and shapes["scores_out"][1:] == [20] and shapes["classes"][1:] == [20]
    assert len(shapes["count"]) == 1


def test_exported_graph_runs_alike_in_three_consumers(exported_selector):
    import cv2
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(11)
    scenes = [random_scene(rng, 300, 3, clustered=True) for _ in range(3)]
    feeds = {"boxes": np.stack([b for b, _ in scenes]), "scores": np.stack([s for _, s in scenes])}
    names = ["boxes_out", "scores_out", "classes", "count"]
    expected = [t.numpy() for t in Selector()(torch.from_numpy(feeds["boxes"]), torch.from_numpy(feeds["scores"]))]
    session = ort.InferenceSession(str(exported_selector), providers=["CPUExecutionProvider"])
    reference = ReferenceEvaluator(str(exported_selector))
    net = cv2.dnn.readNetFromONNX(str(exported_selector))
    net.setInput(feeds["boxes"], "boxes")
    net.setInput(feeds["scores"], "scores")
    results = {
        "onnxruntime": session.run(names, feeds),
        "reference": reference.run(names, feeds),
        "opencv": net.forward(names),
    }
    for consumer, outputs in results.items():
        for name, have, want in zip(names, outputs, expected):
            have = np.asarray(have).reshape(want.shape)
            if np.issubdtype(want.dtype, np.floating):
                np.testing.assert_allclose(have, want, atol=1e-4, err_msg=f"{consumer} {name}")
            else:
                np.testing.assert_array_equal(have.astype(want.dtype), want, err_msg=f"{consumer} {name}")
