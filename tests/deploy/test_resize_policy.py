"""The resize policy end to end: recorded in the file, applied by the Engine as by the in-graph resize,
masks back in the frame's coordinates, and files from before policies read as `stretch`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.deploy.wrapper import ExportWrapper
from edgemtl.errors import ModelFileError
from edgemtl.resize import POLICIES, fit, restore_mask
from edgemtl.runtime import Engine
from edgemtl.train import load_checkpoint
from tests.helpers import TINY_SIZE

FRAME = (48, 80)  # 5:3, into the 32x32 session model


@pytest.fixture(scope="module")
def policy_files(trained_run, tmp_path_factory):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    folder = tmp_path_factory.mktemp("policies")
    return {p: export_onnx(checkpoint, folder / f"{p}.onnx", ExportOptions(resize=p)).path for p in POLICIES}


@pytest.mark.parametrize("policy", POLICIES)
def test_engine_and_in_graph_resize_agree(policy, policy_files, trained_run):
    """The Engine (OpenCV resize, model-size file) and a graph that resizes the frame itself give the same
    probabilities and, mapped back, the same frame-sized mask."""
    frame = np.random.default_rng(2).integers(0, 256, (*FRAME, 3), dtype=np.uint8)
    frame[:, 30:50] = 255  # structure, so a box off by a pixel shows
    engine = Engine(policy_files[policy], device="cpu")
    assert engine.metadata.resize == policy
    prediction = engine.predict(frame)

    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    wrapper = ExportWrapper(
        checkpoint.build_model(), checkpoint.mean, checkpoint.std, frame_size=FRAME, input_size=TINY_SIZE, resize=policy
    )
    with torch.no_grad():
        graph = dict(zip(wrapper.output_names, wrapper(torch.from_numpy(frame[None]))))
    np.testing.assert_allclose(prediction["scene"].probabilities, graph["scene_probs"][0].numpy(), atol=2e-3)
    mask = restore_mask(graph["segmentation_mask"][0].numpy(), fit(FRAME, TINY_SIZE, policy))
    engine_mask = prediction["segmentation"].mask
    assert engine_mask.shape == mask.shape == FRAME
    assert (engine_mask == mask).mean() > 0.99


def test_policies_map_masks_differently(policy_files):
    """The same frame under letterbox and crop: both masks at the frame's size, placed per policy."""
    frame = np.random.default_rng(3).integers(0, 256, (*FRAME, 3), dtype=np.uint8)
    masks = {p: Engine(policy_files[p], device="cpu").predict(frame)["segmentation"].mask for p in POLICIES}
    assert all(m.shape == FRAME for m in masks.values())
    crop = fit(FRAME, TINY_SIZE, "crop").source
    border = masks["crop"][:, : crop[1]]  # unseen: each row repeats its first seen pixel
    assert (border == masks["crop"][:, crop[1] : crop[1] + 1]).all()


def test_metadata_round_trip_and_old_files_read_as_stretch(policy_files, tmp_path):
    engine = Engine(policy_files["letterbox"], device="cpu")
    assert "resize letterbox" in "\n".join(engine.metadata.describe())
    model = onnx.load(policy_files["letterbox"])
    for prop in model.metadata_props:
        if prop.key == "edgemtl.input":
            prop.value = prop.value.replace(', "resize": "letterbox"', "")
            assert "resize" not in prop.value
    old = tmp_path / "old.onnx"
    onnx.save(model, old)
    assert Engine(old, device="cpu").metadata.resize == "stretch"
    for prop in model.metadata_props:
        if prop.key == "edgemtl.input":
            prop.value = prop.value.replace('"pad_value"', '"resize": "squash", "pad_value"')
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(ModelFileError, match=r"input.resize: unknown resize policy 'squash'"):
        Engine(tmp_path / "bad.onnx", device="cpu")
