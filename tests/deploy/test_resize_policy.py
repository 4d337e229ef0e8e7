"""The resize policy end to end: recorded in the file, applied by the Engine, masks back in the frame's
coordinates, and files from before policies read as `stretch`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.errors import ModelFileError
from edgemtl.resize import POLICIES, fit
from edgemtl.runtime import Engine
from edgemtl.train import load_checkpoint
from tests.helpers import TINY_SIZE

FRAME = (48, 80)  # 5:3, into the 32x32 session model


@pytest.fixture(scope="module")
def policy_files(trained_run, tmp_path_factory):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    folder = tmp_path_factory.mktemp("policies")
    return {p: export_onnx(checkpoint, folder / f"{p}.onnx", ExportOptions(resize=p)).path for p in POLICIES}


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
