"""What several deploy tests share: a random-weight detection checkpoint, and the checks that an exported
file's consumers without edgemtl (OpenCV DNN, Triton's config schema) take it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch

from edgemtl.data.synthetic import OBSTACLES_TASK
from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, create_model
from edgemtl.train import Checkpoint


def detection_checkpoint(tasks=(OBSTACLES_TASK,), size=(32, 32)) -> Checkpoint:
    """Random weights, the detection scores spread over (0, 1): boxes survive a selection threshold."""
    torch.manual_seed(0)
    model = create_model("nano", tasks)
    if OBSTACLES_TASK in tasks:
        with torch.no_grad():  # scores spread over (0, 1) instead of all at the 1 % prior
            model.heads[OBSTACLES_TASK.name].classes.weight.normal_(0, 2.0)
            model.heads[OBSTACLES_TASK.name].classes.bias.zero_()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return Checkpoint("nano", tuple(tasks), size, DEFAULT_MEAN, DEFAULT_STD, state)


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
