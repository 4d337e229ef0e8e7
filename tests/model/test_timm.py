"""timm encoders (`encoder = "timm:<name>"`): random initialisation only, nothing is downloaded
(tests/conftest.py sets HF_HUB_OFFLINE=1). Tests that need timm skip where it does not import."""

from __future__ import annotations

import sys

import pytest
import torch

from edgemtl.errors import ConfigError
from edgemtl.model import create_model, model_stride
from edgemtl.model.timm_encoder import check_timm_name
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import TrainConfig
from tests.helpers import import_timm

NAME = "mobilenetv3_small_050"  # the smallest common features_only model: 0.3 M parameters
ENCODER = f"timm:{NAME}"
timm = import_timm()


def test_decoder_and_heads_follow_the_timm_features():
    model = create_model("nano", NAVIGATION_TASKS, encoder=ENCODER).eval()
    assert model.encoder.channels == tuple(timm.create_model(NAME, features_only=True).feature_info.channels())
    assert model.encoder.reductions == (2, 4, 8, 16, 32) and model_stride("nano", ENCODER) == 32
    with torch.no_grad():
        outputs = model(torch.zeros(2, 3, 64, 96))
    assert outputs["scene"].shape == (2, 4) and outputs["segmentation"].shape == (2, 4, 64, 96)


def test_unknown_timm_name_lists_the_closest():
    with pytest.raises(
        ConfigError, match=r"unknown timm model 'mobilenetv3_smal_050': did you mean .*mobilenetv3_small_050"
    ):
        check_timm_name("mobilenetv3_smal_050")


def test_pretrained_without_the_hub_says_how_to_provide_the_file():
    with pytest.raises(ConfigError, match=r"cannot fetch pretrained weights .*HF_HUB_OFFLINE.*set weights ="):
        create_model("nano", NAVIGATION_TASKS, encoder=ENCODER, pretrained=True)


def test_weights_file_loads_and_a_mismatch_names_the_file_and_keys(tmp_path):
    source = timm.create_model(NAME)  # the classifier model, as timm's and torchvision's files hold it
    good = tmp_path / f"{NAME}.pth"
    torch.save(source.state_dict(), good)
    model = create_model("nano", NAVIGATION_TASKS, encoder=ENCODER, weights=str(good))
    assert torch.equal(model.encoder.model.conv_stem.weight, source.conv_stem.weight)

    other = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), other)
    with pytest.raises(
        ConfigError, match=rf"weights file {other} does not match timm model '{NAME}': .*missing, first conv_stem"
    ):
        create_model("nano", NAVIGATION_TASKS, encoder=ENCODER, weights=str(other))
    wrong = {k: v[..., :1] if v.ndim == 4 else v for k, v in source.state_dict().items()}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ConfigError, match=r"of another shape, first conv_stem.weight"):
        create_model("nano", NAVIGATION_TASKS, encoder=ENCODER, weights=str(tmp_path / "wrong.pth"))


def test_a_mismatched_weights_file_fails_the_config_check(tmp_path):
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "resnet18.pth")
    config = TrainConfig(encoder=ENCODER, weights=str(tmp_path / "resnet18.pth"), input_size=(64, 64))
    with pytest.raises(ConfigError, match=r"resnet18.pth does not match timm model"):
        config.check_model()  # what `edgemtl train` runs before it loads any data


def test_frozen_encoder_keeps_weights_and_statistics():
    model = create_model("nano", NAVIGATION_TASKS, encoder=ENCODER).freeze_encoder().train()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    outputs = model(torch.randn(2, 3, 64, 64))
    (outputs["scene"].sum() + outputs["segmentation"].sum()).backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())  # running stats too
    assert not model.encoder.training and model.heads.training


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"encoder": "timm:resnet_18"}, r"unknown timm model 'resnet_18': did you mean resnet18"),
        ({"encoder": ENCODER, "input_size": (48, 80)}, r"input size 48x80 .* multiples of 32; use 64x96"),
        ({"encoder": ENCODER, "weights": "missing.pth"}, r"weights file missing.pth does not exist"),
        ({"pretrained": True}, r"pretrained and weights need a timm encoder"),
    ],
)
def test_bad_model_settings_are_one_line_before_any_data(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings).check_model()


def test_without_timm_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    with pytest.raises(ConfigError, match=r"needs the timm package.*torch==2\.14\.1 torchvision==0\.29\.1"):
        check_timm_name(NAME)


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--encoder", "timm:resnet_18"], ["unknown timm model 'resnet_18'", "resnet18"]),
        (["--encoder", ENCODER, "--input-size", "48x80"], ["48x80", "use 64x96"]),
        (["--encoder", ENCODER, "--weights", "WRONG"], ["resnet18.pth does not match timm model", "missing"]),
    ],
)
def test_train_cli_refuses_bad_encoder_settings_in_one_line(tmp_path, flags, fragments):
    from tests.helpers import assert_one_line_error, invoke

    wrong = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), wrong)
    flags = [str(wrong) if f == "WRONG" else f for f in flags]
    result = invoke("train", *flags, "--epochs", 1, "--device", "cpu", "--out", tmp_path / "run", "--no-progress")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()  # refused before a run folder or any data
