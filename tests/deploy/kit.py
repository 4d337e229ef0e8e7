"""What several deploy tests share: a random-weight detection checkpoint, and the checks that an exported
file's consumers without edgemtl (OpenCV DNN, Triton's config schema) take it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edgemtl.data.synthetic import OBSTACLES_TASK
from edgemtl.train import Checkpoint, random_checkpoint


def detection_checkpoint(tasks=(OBSTACLES_TASK,), size=(32, 32)) -> Checkpoint:
    """Random weights, the detection scores spread apart around 0.5: boxes survive a selection threshold."""
    return random_checkpoint("nano", tuple(tasks), size, varied=True)


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


def parse_triton_config(text: str):
    """Through Triton's own ModelConfig schema: a config Triton would reject fails here."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())
