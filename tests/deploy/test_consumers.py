"""The exported file in a consumer that is not ONNX Runtime: OpenCV's DNN module runs it as it is, and
gives ONNX Runtime's results (the graph carries its own pre- and postprocessing)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort


def opencv_dnn_matches_onnxruntime(model: Path, frames: np.ndarray) -> None:
    """Every output of OpenCV DNN equals ONNX Runtime's on `frames` (N, H, W, 3) uint8: probabilities
    within 1e-4, labels and masks (almost) exactly."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    expected = dict(zip(names, session.run(names, {session.get_inputs()[0].name: frames})))
    net = cv2.dnn.readNetFromONNX(str(model))
    net.setInput(frames)
    got = dict(zip(names, net.forward(names)))
    for name in names:
        want, have = expected[name], np.asarray(got[name]).reshape(expected[name].shape)
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(have, want, atol=1e-4, err_msg=name)
        else:  # ids: a pixel whose two best logits tie within float error may flip
            assert (have.astype(want.dtype) == want).mean() > 0.995, name


def test_opencv_dnn_runs_the_preset_export(exported_model, tiny_data):
    opencv_dnn_matches_onnxruntime(exported_model, tiny_data.images[:2])
