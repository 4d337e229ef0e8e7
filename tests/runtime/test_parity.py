"""The comparison rules export and the runtime share: probabilities by tolerance, ids and overlay pixels by
agreement."""

from __future__ import annotations

import numpy as np

from edgemtl.runtime.parity import EXACT, Tolerance, check_output, compare_outputs


def test_an_overlay_is_compared_by_pixel_agreement_like_its_mask():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    ours = reference.copy()
    ours[0, 0, :4] = reference[0, 0, :4] ^ 0x50  # 4 of 9600 pixels, off by up to 80: where the mask flipped
    check = check_output("overlay", ours, reference)
    assert check.measure == "agreement" and check.ok and check.value == 1 - 4 / 9600
    rounded = np.clip(reference.astype(int) + rng.integers(-1, 2, reference.shape), 0, 255).astype(np.uint8)
    assert check_output("overlay", rounded, reference).value == 1.0  # the blend's rounding is no disagreement
    ours[1, :10] = 255 - reference[1, :10]  # a sixth of a frame: a real difference
    failed = check_output("overlay", ours, reference, names=("ONNX", "PyTorch"))
    assert not failed.ok and "ONNX [" in str(failed) and "vs PyTorch [" in str(failed)


def test_a_failing_check_names_both_values_where_they_differ_most():
    reference = {"scene_probs": np.array([[0.1, 0.9]], np.float32), "scene_label": np.array([1])}
    ours = {"scene_probs": np.array([[0.6, 0.4]], np.float32), "scene_label": np.array([0])}
    probs, label = compare_outputs(ours, reference, EXACT, ("openvino", "onnxruntime"))
    assert not probs.ok and "openvino 0.6 vs onnxruntime 0.1 at (0, 0)" in str(probs)
    assert not label.ok and label.measure == "agreement" and "openvino 0 vs onnxruntime 1" in str(label)
    assert compare_outputs(ours, reference, Tolerance(probability=0.6, agreement=0.0), ("a", "b"))[0].ok


def test_a_backend_that_orders_tied_boxes_otherwise_is_not_refused():
    """Near-equal scores may come out in another order from another backend: boxes are matched one to one
    (KindDef.parity), so a backend is held to the boxes it finds, not to their rows."""
    from edgemtl.tasks import TaskKind, TaskSpec

    task = TaskSpec("objects", TaskKind.DETECTION, ("car", "cone"))
    reference = {
        "objects_boxes": np.array([[[10, 10, 50, 60], [70, 20, 90, 40], [0, 0, 0, 0]]], np.float32),
        "objects_scores": np.array([[0.8, 0.8 - 1e-6, 0.0]], np.float32),
        "objects_classes": np.array([[0, 1, 0]], np.int64),
        "objects_count": np.array([2], np.int64),
    }
    swapped = {name: value.copy() for name, value in reference.items()}
    for name in ("objects_boxes", "objects_scores", "objects_classes"):
        swapped[name][0, :2] = reference[name][0, [1, 0]]
    assert not all(check.ok for check in compare_outputs(swapped, reference))  # row by row: refused
    checks = compare_outputs(swapped, reference, tasks=(task,))
    assert all(check.ok for check in checks), checks
    moved = {**swapped, "objects_boxes": swapped["objects_boxes"] + np.float32(5)}  # boxes really elsewhere
    assert not all(check.ok for check in compare_outputs(moved, reference, tasks=(task,)))
