"""The detection kind: targets, the head, the assigners and the loss, boxes under augmentation, the meter."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from edgemtl.data import AugmentConfig, augment_batch
from edgemtl.data.augment import _affine
from edgemtl.data.synthetic import OBSTACLES_TASK, make_dataset
from edgemtl.errors import ConfigError, DataError
from edgemtl.kinds import kind_of
from edgemtl.kinds.box_decode import softplus
from edgemtl.kinds.boxes import MAX_BOXES, empty_target, objects_of, pack_boxes, warp_target
from edgemtl.kinds.detection_loss import TOPK, assign_center, assign_tal, detection_loss
from edgemtl.metrics import make_meter
from edgemtl.model import create_model
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from edgemtl.train import TrainConfig, load_checkpoint, random_checkpoint, save_checkpoint, train
from edgemtl.train.losses import labelled_count, task_loss, task_prediction
from edgemtl.train.weighting import WEIGHTINGS
from tests.helpers import import_timm

TASK = TaskSpec("things", "detection", ("cone", "person"), extra={"flip_pairs": []})
SIZE = (32, 32)


def _targets() -> np.ndarray:
    """Three images: two objects; labelled with none; not labelled."""
    return np.stack([pack_boxes([(0, (2, 3, 12, 20)), (1, (16, 8, 30, 30))]), empty_target(), empty_target(False)])


def _raw(task: TaskSpec = TASK, count: int = 3, stride: int = 4) -> torch.Tensor:
    model = create_model("nano", (replace(task, extra={"stride": stride}),))
    return model(torch.randn(count, 3, *SIZE, generator=torch.manual_seed(0)))[task.name]


# --- the task and its targets ---------------------------------------------------------------------------


def test_options_are_checked_when_the_task_is_made():
    with pytest.raises(ConfigError, match="stride 2: expected one of 4, 8"):
        TaskSpec("t", "detection", ("a",), extra={"stride": 2})
    with pytest.raises(ConfigError, match="max_detections 0: expected a whole number"):
        TaskSpec("t", "detection", ("a",), extra={"max_detections": 0})
    with pytest.raises(ConfigError, match=r"score_threshold 1\.5: expected a number between 0 and 1"):
        TaskSpec("t", "detection", ("a",), extra={"score_threshold": 1.5})
    with pytest.raises(ConfigError, match="unknown loss 'fcos': expected one of center, tal"):
        TaskSpec("t", "detection", ("a",), extra={"loss": "fcos"})


def test_targets_keep_unlabelled_apart_from_labelled_empty():
    kind, target = kind_of(TASK), _targets()
    kind.check_target(TASK, target, (3, *SIZE, 3))
    assert labelled_count(TASK, torch.from_numpy(target)) == 2  # images, the empty one included
    broken = target.copy()
    broken[0, 0, 0] = 5
    with pytest.raises(DataError, match=r"class ids .*expected whole numbers 0..1 \(cone, person\)"):
        kind.check_target(TASK, broken, (3, *SIZE, 3))
    broken = target.copy()
    broken[1, 3] = np.nan
    with pytest.raises(DataError, match="partly NaN"):
        kind.check_target(TASK, broken, (3, *SIZE, 3))
    with pytest.raises(DataError, match=r"expected \(3, 64, 5\) floats"):
        kind.check_target(TASK, target[:, :8], (3, *SIZE, 3))


def test_pack_keeps_the_largest_boxes_past_the_limit():
    boxes = [(0, (0, 0, 1 + i, 1 + i)) for i in range(MAX_BOXES + 6)]
    packed = pack_boxes(boxes)
    assert len(objects_of(packed)) == MAX_BOXES and objects_of(packed)[:, 3].min() == 7


# --- the head and the loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [4, 8])
def test_the_head_decodes_a_box_and_scores_per_location(stride: int):
    raw = _raw(stride=stride)
    locations = (SIZE[0] // stride) * (SIZE[1] // stride)
    assert raw.shape == (3, locations, 4 + 2 + 3)
    boxes, points = raw[..., :4], raw[0, :, 6:8]
    assert torch.all(boxes[..., :2] <= points) and torch.all(boxes[..., 2:] >= points)
    assert torch.all(raw[..., -1] == stride)
    assert points[0].tolist() == [stride / 2, stride / 2]
    assert torch.allclose(raw[..., 4:6].sigmoid().mean(), torch.tensor(0.01), atol=0.01), "1 % prior"


@pytest.mark.parametrize("tower", [4, 8])
def test_the_stride_4_head_predicts_each_location_once_wherever_its_tower_runs(tower: int):
    model = create_model("nano", (replace(TASK, extra={"tower_stride": tower}),)).eval()
    head, shapes = model.heads[TASK.name], []
    head.tower.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape[-2:])))
    raw = model(torch.randn(1, 3, *SIZE, generator=torch.manual_seed(0)))[TASK.name]
    assert shapes == [(SIZE[0] // tower, SIZE[1] // tower)]  # the blocks run at the tower's stride
    grid = sorted((x * 4 + 2.0, y * 4 + 2.0) for x in range(SIZE[1] // 4) for y in range(SIZE[0] // 4))
    assert sorted(map(tuple, raw[0, :, 6:8].tolist())) == grid  # every stride-4 location, once
    boxes, points = raw[0, :, :4], raw[0, :, 6:8]
    assert torch.all(boxes[:, :2] <= points) and torch.all(boxes[:, 2:] >= points)


def test_the_tower_stride_is_checked():
    with pytest.raises(ConfigError, match="tower_stride 4: expected one of 8 \\(at least its stride\\)"):
        TaskSpec("t", "detection", ("a",), extra={"stride": 8, "tower_stride": 4})
    with pytest.raises(ConfigError, match="tower_stride 16: expected one of 4, 8"):
        TaskSpec("t", "detection", ("a",), extra={"tower_stride": 16})


def test_the_box_distances_are_softplus_in_operators_onnx_runtime_vectorizes():
    x = torch.linspace(-40, 40, 2001)
    assert torch.allclose(softplus(x), torch.nn.functional.softplus(x), atol=1e-6)
    half = softplus(x.half())
    assert torch.isfinite(half).all() and torch.allclose(half.float(), torch.nn.functional.softplus(x), atol=0.05)


def test_a_checkpoint_from_before_the_stride_8_tower_still_loads(tmp_path):
    old = random_checkpoint("nano", (replace(TASK, extra={"tower_stride": 4}),), SIZE)
    path = save_checkpoint(old, tmp_path / "old.pt")
    data = torch.load(path, weights_only=True)
    for task in data["tasks"]:  # as written before the option existed
        task["extra"].pop("tower_stride")
    torch.save(data, path)
    loaded = load_checkpoint(path)
    assert loaded.tasks[0].extra["tower_stride"] == 4
    frame = torch.randn(1, 3, *SIZE, generator=torch.manual_seed(1))
    assert torch.equal(loaded.build_model()(frame)[TASK.name], old.build_model()(frame)[TASK.name])
    assert load_checkpoint(save_checkpoint(random_checkpoint("nano", (TASK,), SIZE), tmp_path / "new.pt")).tasks == (
        TASK,
    )


@pytest.mark.parametrize("assigner", ["center", "tal"])
def test_the_loss_trains_on_labelled_images_only(assigner: str):
    task = replace(TASK, extra={"loss": assigner})
    raw = _raw(task).detach().requires_grad_(True)
    target = torch.from_numpy(_targets())
    loss = task_loss(task, raw, target)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0
    grads = raw.grad.abs().sum(dim=(1, 2))
    assert grads[0] > 0 and grads[1] > 0, "boxes and negatives both teach"
    assert grads[2] == 0, "an unlabelled image takes no part"
    assert torch.all(raw.grad[1, :, :4] == 0), "no box on a labelled-empty image: only its class scores train"

    raw.grad = None
    nothing = task_loss(task, raw, target[2:])
    nothing.backward()
    assert nothing.item() == 0 and raw.grad.abs().sum() == 0


def _assign(assigner, boxes: list[tuple[float, float, float, float]], stride: int = 4):
    points = torch.stack(
        torch.meshgrid(torch.arange(8) * 4.0 + 2, torch.arange(8) * 4.0 + 2, indexing="xy"), -1
    ).reshape(-1, 2)
    strides = torch.full((64,), float(stride))
    gt = torch.tensor([boxes])
    pred = torch.cat([points - 3, points + 3], -1)[None]
    scores = torch.full((1, 64, 2), 0.5)
    return assigner(
        pred,
        scores,
        points,
        strides,
        gt,
        torch.zeros(1, len(boxes), dtype=torch.long),
        torch.ones(1, len(boxes), dtype=torch.bool),
    )


def test_centre_sampling_assigns_inside_the_box_near_its_centre_and_never_forgets_a_tiny_box():
    foreground, index, quality = _assign(assign_center, [(0, 0, 32, 32), (13.5, 13.5, 14.5, 14.5)])
    assert foreground.sum() > 1
    tiny = (index[0] == 1) & foreground[0]
    assert tiny.sum() == 1, "a box smaller than a cell takes its nearest location"
    assert torch.all(quality[~foreground] == 0) and torch.all(quality[foreground] >= 0)


def test_task_alignment_takes_at_most_topk_locations_per_box():
    foreground, _, quality = _assign(assign_tal, [(0, 0, 32, 32)])
    assert 1 <= foreground.sum() <= TOPK
    assert quality[foreground].max() == pytest.approx(quality.max()) and quality.max() <= 1


def test_an_empty_labelled_batch_still_backpropagates():
    raw = _raw().detach().requires_grad_(True)
    loss = detection_loss(raw, torch.from_numpy(np.stack([empty_target()] * 3)), 2, "center")
    loss.backward()
    assert loss.item() > 0 and raw.grad[..., 4:6].abs().sum() > 0


# --- boxes move with the pixels -------------------------------------------------------------------------


def test_a_flip_mirrors_boxes_and_swaps_declared_pairs():
    task = TaskSpec(
        "t", "detection", ("left_arrow", "right_arrow"), extra={"flip_pairs": [["left_arrow", "right_arrow"]]}
    )
    images = np.zeros((2, 16, 20, 3), np.uint8)
    targets = {"t": np.stack([pack_boxes([(0, (2, 3, 6, 9))]), empty_target(False)])}
    _, out = augment_batch(images, targets, (task,), AugmentConfig(flip=1.0), np.random.default_rng(0))
    assert objects_of(out["t"][0]).tolist() == [[1, 14, 3, 18, 9]]
    assert np.isnan(out["t"][1]).all(), "an unlabelled image stays unlabelled"
    assert objects_of(targets["t"][0]).tolist() == [[0, 2, 3, 6, 9]], "the input is not modified"


def test_a_zoom_scales_clips_and_drops_boxes():
    target = pack_boxes([(0, (8, 8, 12, 12)), (1, (0, 0, 2, 2)), (0, (12, 6, 18, 10)), (1, (16, 2, 20, 8))])
    matrix = _affine(False, 2.0, np.array([0.5, 0.5]), 20, 20)  # zoom ×2 about the centre
    moved = objects_of(warp_target(target, matrix, (20, 20)))
    assert moved[0].tolist() == pytest.approx([0, 6, 6, 14, 14]), "the centre box doubles"
    assert moved[1].tolist() == pytest.approx([0, 14, 2, 20, 10]), "the edge box is clipped (half still shows)"
    assert len(moved) == 2, "the corner box left the crop, the box with a sixth of it in frame is dropped"


def test_synthetic_boxes_follow_a_flip_of_the_frame():
    data = make_dataset(4, SIZE, seed=3, tasks=(OBSTACLES_TASK,))
    _, out = augment_batch(
        data.images, data.targets, (OBSTACLES_TASK,), AugmentConfig(flip=1.0), np.random.default_rng(0)
    )
    for before, after in zip(data.targets["obstacles"], out["obstacles"]):
        rows = objects_of(before)
        assert np.allclose(objects_of(after)[:, [1, 3]], SIZE[1] - rows[:, [3, 1]])


# --- the meter ------------------------------------------------------------------------------------------


def _packed(rows: list[list[float]], k: int = 5) -> np.ndarray:
    """One image's (K, 7) scored rows: box, score, class, kept."""
    out = np.zeros((k, 7), np.float32)
    for i, row in enumerate(rows):
        out[i] = [*row, 1]
    return out


def test_perfect_boxes_score_one_and_none_score_zero():
    target = _targets()
    perfect = np.stack([_packed([[2, 3, 12, 20, 0.9, 0], [16, 8, 30, 30, 0.8, 1]]), _packed([]), _packed([])])
    meter = make_meter(TASK)
    meter.update(perfect, target)
    scores = meter.compute()
    assert next(iter(scores)) == "map" and scores["map"] == pytest.approx(1.0) and scores["map_50"] == pytest.approx(1)
    assert scores["ap_cone"] == pytest.approx(1.0) and scores["ap_person"] == pytest.approx(1.0)

    meter = make_meter(TASK)
    meter.update(np.stack([_packed([])] * 3), target)
    assert meter.compute()["map"] == 0.0

    meter = make_meter(TASK)  # a box on the labelled-empty image is a false positive, ranked above the hits
    wrong = perfect.copy()
    wrong[1] = _packed([[1, 1, 9, 9, 0.95, 0]])
    meter.update(wrong, target)
    assert meter.compute()["ap_cone"] < 1


def test_the_meter_skips_unlabelled_images_and_reports_nan_without_objects():
    meter = make_meter(TASK)
    meter.update(np.stack([_packed([[0, 0, 5, 5, 0.9, 0]])]), empty_target(False)[None])
    assert math.isnan(meter.compute()["map"])


def test_prediction_packs_the_selected_boxes():
    raw = _raw()
    packed = task_prediction(TASK, raw.detach())
    assert packed.shape == (3, 100, 7)
    kept = packed[..., 6]
    assert torch.all(kept[:, 1:] <= kept[:, :-1]), "kept rows first"


# --- a few training steps -------------------------------------------------------------------------------


def test_a_tiny_run_trains_scene_segmentation_and_detection(tmp_path):
    tasks = (*NAVIGATION_TASKS, OBSTACLES_TASK)
    data = make_dataset(24, SIZE, seed=0, tasks=tasks)
    targets = dict(data.targets)
    targets["obstacles"] = targets["obstacles"].copy()
    targets["obstacles"][::3] = np.nan  # partial labels
    data = type(data)(data.images, targets)
    config = TrainConfig(preset="nano", input_size=SIZE, epochs=1, batch_size=8, seed=0, device="cpu")
    run = train(
        config,
        tasks,
        data.subset(slice(0, 16)),
        data.subset(slice(16, 24)),
        tmp_path,
        progress=False,
        log=lambda _: None,
    )
    scores = run.best_metrics["obstacles"]
    assert 0 <= scores["map"] <= 1 and math.isfinite(scores["loss"])
    assert (tmp_path / "ap_obstacles.png").is_file()


@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_every_task_weighting_trains_with_detection(weighting: str, tmp_path):
    tasks = (NAVIGATION_TASKS[0], OBSTACLES_TASK)
    data = make_dataset(8, SIZE, seed=0, tasks=tasks)
    config = TrainConfig(
        preset="nano", input_size=SIZE, epochs=1, batch_size=4, seed=0, device="cpu", weighting=weighting, plots=False
    )
    run = train(config, tasks, data, data, tmp_path, progress=False, log=lambda _: None)
    assert math.isfinite(run.history[-1]["train_loss"]["obstacles"])


def test_a_timm_encoder_feeds_the_detection_head():
    import_timm()
    model = create_model("nano", (OBSTACLES_TASK,), encoder="timm:mobilenetv3_small_050")
    raw = model(torch.zeros(2, 3, *SIZE))["obstacles"]
    assert raw.shape == (2, (SIZE[0] // 4) * (SIZE[1] // 4), 4 + 3 + 3)
    target = torch.from_numpy(make_dataset(2, SIZE, seed=1, tasks=(OBSTACLES_TASK,)).targets["obstacles"])
    task_loss(OBSTACLES_TASK, raw, target).backward()


def test_a_detection_task_on_vector_input_is_refused_in_one_line():
    from edgemtl.features import refuse_pixel_tasks

    with pytest.raises(ConfigError, match=r"task 'obstacles' is detection, which needs image input") as caught:
        refuse_pixel_tasks((OBSTACLES_TASK,))
    assert "\n" not in str(caught.value)
