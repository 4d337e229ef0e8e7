import pytest
import torch

from edgemtl.errors import ConfigError
from edgemtl.model import PRESETS, Preprocess, create_model, model_cost
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec

ALL_KINDS = (
    *NAVIGATION_TASKS,
    TaskSpec("objects", "multilabel", ("car", "person", "dog")),
    TaskSpec("distance", "regression"),
)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("skips", [True, False])
def test_every_preset_gives_every_head_its_shape_and_gradients(preset, skips):
    torch.manual_seed(0)
    model = create_model(preset, ALL_KINDS, skips=skips)
    x = torch.randn(2, 3, 64, 96)
    outputs = model(x)
    assert outputs["scene"].shape == (2, 4)
    assert outputs["segmentation"].shape == (2, 4, 64, 96)
    assert outputs["objects"].shape == (2, 3)
    assert outputs["distance"].shape == (2, 1)
    assert all(torch.isfinite(o).all() for o in outputs.values())
    sum(o.float().mean() for o in outputs.values()).backward()
    without_gradient = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    if not skips:  # the projections of the skips exist only with skips
        without_gradient = [n for n in without_gradient if ".project." not in n]
    assert without_gradient == []


def test_presets_grow_in_cost():
    costs = [model_cost(create_model(name, NAVIGATION_TASKS), (128, 128)) for name in ("nano", "small", "base")]
    assert costs[0].parameters < costs[1].parameters < costs[2].parameters
    assert costs[0].flops < costs[1].flops < costs[2].flops
    assert "GFLOPs at 128x128" in str(costs[0])


def test_flops_scale_with_input_area():
    model = create_model("nano", NAVIGATION_TASKS)
    small, large = model_cost(model, (64, 64)).flops, model_cost(model, (128, 128)).flops
    assert 3.5 < large / small < 4.5


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown preset 'huge': expected one of nano, small, base"):
        create_model("huge", NAVIGATION_TASKS)


def test_input_size_not_a_multiple_of_the_stride_suggests_a_fix():
    with pytest.raises(ConfigError, match="use 96x128"):
        model_cost(create_model("nano", NAVIGATION_TASKS), (100, 120))


@pytest.mark.parametrize(("mean", "std"), [((127.5,) * 3, (64.0,) * 3), ((100.0, 120.0, 140.0), (50.0, 60.0, 70.0))])
def test_preprocess_normalizes_per_channel_from_bgr_nhwc(mean, std):
    frames = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    expected = (frames.permute(0, 3, 1, 2).float() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(Preprocess(mean, std)(frames), expected)
