"""A detection task exported: the selection flags in the graph and the metadata, boxes matched with PyTorch's
at export, a frame-sized file's boxes in the frame's pixels, bad flags refused, a doctored K refused at open,
and OpenCV DNN running the whole file alike.

The model is untrained (no minutes of training): its class logits are widened so that scores spread over
(0, 1) and suppression has real work on overlapping boxes.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from edgemtl.data.synthetic import OBSTACLES_TASK, make_dataset
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.deploy.precision import selection_nodes
from edgemtl.deploy.triton import triton_config
from edgemtl.deploy.wrapper import ExportWrapper
from edgemtl.errors import ConfigError, ExportError, ModelFileError
from edgemtl.kinds import kind_of
from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, Preprocess
from edgemtl.model.frame import AREA, FrameSizedNet
from edgemtl.model.preprocess import channels_first
from edgemtl.runtime import Engine
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import Checkpoint
from edgemtl.train.checkpoint import save_checkpoint
from tests.deploy.kit import detection_checkpoint, opencv_dnn_matches_onnxruntime, parse_triton_config
from tests.helpers import assert_one_line, assert_one_line_error, doctor_metadata, invoke

SIZE = (32, 32)
FRAME = (64, 96)  # twice and three times the input: a whole-number (area) downscale inside the graph
SETTINGS = {"max_detections": 7, "score_threshold": 0.3, "iou_threshold": 0.45}


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    return detection_checkpoint()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint):
    path = tmp_path_factory.mktemp("detection") / "detection.onnx"
    data = make_dataset(6, SIZE, seed=1, tasks=(OBSTACLES_TASK,))
    return export_onnx(checkpoint, path, ExportOptions(**SETTINGS), verify_data=data)


def test_flags_shape_the_graph_and_are_recorded(exported):
    engine = Engine(exported.path, device="cpu")
    (task,) = engine.tasks
    assert {key: task.extra[key] for key in SETTINGS} == SETTINGS
    outputs = {o.name: o.shape for o in engine.session.get_outputs()}
    assert outputs["obstacles_boxes"][1:] == [7, 4] and outputs["obstacles_scores"][1:] == [7]
    assert outputs["obstacles_classes"][1:] == [7] and len(outputs["obstacles_count"]) == 1
    frames = make_dataset(4, SIZE, seed=2, tasks=(OBSTACLES_TASK,)).images
    raw = engine.run(frames)
    assert raw["obstacles_count"].max() > 1, "the test needs boxes to compare"
    scores = raw["obstacles_scores"]
    assert np.all(np.diff(scores, axis=1) <= 0) and scores[scores > 0].min() >= 0.3


def test_parity_matches_boxes_with_pytorch(exported):
    checks = {check.output: check for check in exported.parity.checks}
    assert checks["obstacles_boxes"].measure == "agreement" and checks["obstacles_boxes"].value == 1.0
    assert checks["obstacles_scores"].value <= 1e-4
    metrics = {c.task: c for c in exported.verification.comparisons}
    assert metrics["obstacles"].metric == "map" and metrics["obstacles"].checked


def test_the_engine_gives_boxes_in_the_frame_pixels(exported):
    """A model-size file fed a frame of another size: the Engine undoes the stretch, as it does for masks."""
    engine = Engine(exported.path, device="cpu")
    frame = make_dataset(1, FRAME, seed=3, tasks=(OBSTACLES_TASK,)).images[0]
    result = engine.predict(frame)["obstacles"]
    raw = engine.run(engine.prepare(frame)[None])
    count = int(raw["obstacles_count"][0])
    assert count > 0 and len(result.boxes) == count
    scale = np.array([FRAME[1] / SIZE[1], FRAME[0] / SIZE[0]] * 2, np.float32)
    expected = np.clip(raw["obstacles_boxes"][0, :count] * scale, 0, [FRAME[1], FRAME[0]] * 2)
    np.testing.assert_allclose(result.boxes, expected, rtol=1e-5, atol=1e-3)


def test_a_frame_sized_network_scales_boxes_before_selection(checkpoint):
    model = checkpoint.build_model()
    preprocess = Preprocess(DEFAULT_MEAN, DEFAULT_STD)
    frames = torch.from_numpy(make_dataset(2, FRAME, seed=4, tasks=(OBSTACLES_TASK,)).images)
    framed = FrameSizedNet(model, SIZE, preprocess, AREA)(frames)["obstacles"]
    small = torch.nn.functional.avg_pool2d(channels_first(frames), (2, 3))
    direct = model(preprocess.normalize(small))["obstacles"]
    scale = torch.tensor([3.0, 2.0, 3.0, 2.0])
    torch.testing.assert_close(framed[..., :4], direct[..., :4] * scale, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(framed[..., 4:], direct[..., 4:], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_frame_sized_export_returns_boxes_in_the_frame(tmp_path, checkpoint):
    data = make_dataset(4, FRAME, seed=5, tasks=(OBSTACLES_TASK,))
    path = tmp_path / "framed.onnx"
    result = export_onnx(checkpoint, path, ExportOptions(frame_size=FRAME, max_detections=12), verify_data=data)
    assert {c.output: c.value for c in result.parity.checks}["obstacles_boxes"] == 1.0
    engine = Engine(path, device="cpu")
    raw = engine.run(data.images)
    boxes = raw["obstacles_boxes"][0, : int(raw["obstacles_count"][0])]
    assert len(boxes) and boxes[:, 2].max() > SIZE[1] + 8, "boxes reach past the model's 32 pixels"
    prediction = engine.predict(data.images[0])["obstacles"]
    np.testing.assert_array_equal(prediction.boxes, boxes)  # already in the frame: nothing to undo


def test_opencv_dnn_runs_the_detection_export(exported):
    opencv_dnn_matches_onnxruntime(exported.path, make_dataset(2, SIZE, seed=6, tasks=(OBSTACLES_TASK,)).images)


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ({"max_detections": 0}, "--max-detections 0"),
        ({"max_detections": -2}, "--max-detections -2"),
        ({"max_detections": 5000}, "1 to 3839"),
        ({"score_threshold": 1.5}, "--score-threshold 1.5"),
        ({"iou_threshold": -0.1}, "--iou-threshold -0.1"),
    ],
)
def test_bad_settings_are_refused_before_any_work(checkpoint, setting, fragment):
    with pytest.raises(ConfigError) as error:
        ExportOptions(**setting).validate(checkpoint)
    assert_one_line(error, fragment)


def test_settings_need_a_detection_task():
    plain = detection_checkpoint(NAVIGATION_TASKS)
    with pytest.raises(ConfigError) as error:
        ExportOptions(max_detections=5).validate(plain)
    assert_one_line(error, "--max-detections", "has none", "scene (classification)")


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-detections", "0"), ("--score-threshold", "2"), ("--iou-threshold", "-1")]
)
def test_the_cli_refuses_bad_settings_in_one_line(tmp_path, checkpoint, flag, value):
    path = save_checkpoint(checkpoint, tmp_path / "best.pt")
    result = invoke("export", path, flag, value, "--no-verify")
    assert_one_line_error(result, flag)
    assert not list(tmp_path.glob("*.onnx"))


def test_a_file_whose_k_disagrees_with_its_metadata_is_refused(exported, tmp_path):
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    tasks = json.loads(props["edgemtl.tasks"])
    tasks[0]["extra"]["max_detections"] = 9
    doctored = doctor_metadata(exported.path, tmp_path / "k.onnx", {"tasks": json.dumps(tasks)})
    with pytest.raises(ModelFileError) as error:
        Engine(doctored, device="cpu")
    assert_one_line(error, "obstacles_boxes", "says 9 there", "up to 9 boxes")


def test_the_wrapper_outputs_in_the_documented_order(checkpoint):
    tasks = tuple(replace(t, extra={**t.extra, **SETTINGS}) for t in checkpoint.tasks)
    model = replace(checkpoint, tasks=tasks).build_model()
    wrapper = ExportWrapper(model, DEFAULT_MEAN, DEFAULT_STD)
    assert wrapper.output_names == ["obstacles_boxes", "obstacles_scores", "obstacles_classes", "obstacles_count"]
    boxes, scores, classes, count = wrapper(torch.zeros(2, *SIZE, 3, dtype=torch.uint8))
    assert boxes.shape == (2, 7, 4) and scores.shape == (2, 7) and classes.dtype == torch.int64
    assert count.shape == (2,)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precisions_keep_the_selection_float_and_are_gated_by_map(tmp_path, checkpoint, precision):
    import onnx

    data = make_dataset(6, SIZE, seed=1, tasks=(OBSTACLES_TASK,))
    path = tmp_path / f"detection.{precision}.onnx"
    options = ExportOptions(precision=precision, allow_degraded=True, **SETTINGS)
    calibration = data.images if precision == "int8" else None
    result = export_onnx(checkpoint, path, options, verify_data=data, calibration_frames=calibration)
    assert {c.task: c.metric for c in result.verification.comparisons} == {"obstacles": "map"}
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    graph = proto.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input, *graph.output]}
    selection = {node.name for node in graph.node} & set(selection_nodes(proto))
    inside = [node for node in graph.node if node.name in selection]
    assert any(node.op_type == "MatMul" for node in inside), "the selection is found"
    assert not [node.op_type for node in inside if node.op_type in ("QuantizeLinear", "DequantizeLinear")]
    floats = [types[out] for node in inside if node.op_type in ("TopK", "MatMul") for out in node.output[:1]]
    assert floats and all(t == onnx.TensorProto.FLOAT for t in floats)


def test_a_class_the_metadata_does_not_name_is_refused_in_one_line(exported, tmp_path):
    """The graph's outputs do not show its class count: a file whose metadata names fewer classes than its
    head has opens, and is refused at the first box of a class beyond them."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(exported.path)).metadata_props}
    tasks = json.loads(props["edgemtl.tasks"])
    tasks[0]["classes"] = tasks[0]["classes"][:1]
    doctored = doctor_metadata(exported.path, tmp_path / "classes.onnx", {"tasks": json.dumps(tasks)})
    engine = Engine(doctored, device="cpu")
    frames = make_dataset(4, SIZE, seed=2, tasks=(OBSTACLES_TASK,)).images
    with pytest.raises(ModelFileError) as error:
        for frame in frames:
            engine.predict(frame)
    assert_one_line(error, "'obstacles'", "class id", "1 class (")


def test_triton_declares_every_detection_output(exported):
    """Boxes (K, 4), scores and classes (K) and the count (a per-frame scalar: [1] reshaped to []), each with its
    type and past the batch axis Triton's batcher adds; class names with quotes and backslashes reach the
    config's parameter as they are."""
    from tritonclient.grpc import model_config_pb2

    odd = replace(OBSTACLES_TASK, classes=('a "box"', "back\\slash", "cone"))
    metadata = replace(exported.metadata, tasks=(replace(odd, extra=exported.metadata.tasks[0].extra),))
    parsed = parse_triton_config(triton_config(exported.path, "detect", metadata))
    outputs = {o.name: (model_config_pb2.DataType.Name(o.data_type), list(o.dims)) for o in parsed.output}
    assert outputs == {
        "obstacles_boxes": ("TYPE_FP32", [7, 4]),
        "obstacles_scores": ("TYPE_FP32", [7]),
        "obstacles_classes": ("TYPE_INT64", [7]),
        "obstacles_count": ("TYPE_INT64", [1]),
    }
    count = next(o for o in parsed.output if o.name == "obstacles_count")
    assert count.HasField("reshape") and list(count.reshape.shape) == []
    tasks = json.loads(parsed.parameters["edgemtl.tasks"].string_value)
    assert tasks == [task.to_dict() for task in metadata.tasks] and tasks[0]["classes"][:2] == [
        'a "box"',
        "back\\slash",
    ]


@pytest.mark.parametrize(
    ("elem_type", "triton_type"), [("INT32", "TYPE_INT32"), ("BOOL", "TYPE_BOOL"), ("STRING", None)]
)
def test_triton_declares_any_count_type_it_has_and_refuses_others_in_one_line(
    exported, tmp_path, elem_type, triton_type
):
    """A graph whose count is int32 (or bool flags, as another exporter may write) is served with that type; a
    type Triton has no name for is refused naming the output, not a KeyError."""
    import onnx

    model = onnx.load(str(exported.path))
    count = next(o for o in model.graph.output if o.name == "obstacles_count")
    count.type.tensor_type.elem_type = getattr(onnx.TensorProto, elem_type)
    onnx.save(model, str(tmp_path / "typed.onnx"))
    if triton_type is None:
        with pytest.raises(ExportError) as error:
            triton_config(tmp_path / "typed.onnx", "detect", exported.metadata)
        assert_one_line(error, "'obstacles_count'", "STRING", "INT32")
        return
    from tritonclient.grpc import model_config_pb2

    parsed = parse_triton_config(triton_config(tmp_path / "typed.onnx", "detect", exported.metadata))
    declared = next(o for o in parsed.output if o.name == "obstacles_count")
    assert model_config_pb2.DataType.Name(declared.data_type) == triton_type and list(declared.dims) == [1]


def test_the_graph_decodes_only_the_candidates_and_selects_as_training_does(tmp_path):
    """At 64×96 (384 locations, 3 classes: the selection keeps 256 anchors first), the wrapper hands the head's
    undecoded parts to the selection: the same boxes as selecting from the decoded output that training
    validates on, no Sigmoid in the file over more values than the candidates' boxes, the model decoding
    again once the wrapper has run, and onnx's reference evaluator running the file as ONNX Runtime does."""
    import onnx

    plain = detection_checkpoint(size=FRAME)
    checkpoint = replace(plain, tasks=tuple(replace(t, extra={**t.extra, **SETTINGS}) for t in plain.tasks))
    (task,) = checkpoint.tasks
    model = checkpoint.build_model().eval()
    wrapper = ExportWrapper(model, DEFAULT_MEAN, DEFAULT_STD).eval()
    frames = torch.from_numpy(make_dataset(2, FRAME, seed=8, tasks=(OBSTACLES_TASK,)).images)
    with torch.no_grad():
        graph = wrapper(frames)
        decoded = model(wrapper.preprocess(frames))["obstacles"]
        trained = kind_of(task).postprocess(task, decoded, {})
    assert decoded.shape == (2, 384, 4 + 3 + 3) and int(graph[3].min()) > 1
    for have, want in zip(graph, trained):
        torch.testing.assert_close(have, want, rtol=0, atol=0)
    data = make_dataset(3, FRAME, seed=9, tasks=(OBSTACLES_TASK,))
    result = export_onnx(checkpoint, tmp_path / "wide.onnx", ExportOptions(**SETTINGS), verify_data=data)
    assert {c.output: c.value for c in result.parity.checks}["obstacles_boxes"] == 1.0
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(result.path)))
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim] for v in proto.graph.value_info}
    sigmoid_sizes = [int(np.prod(shapes[n.input[0]])) for n in proto.graph.node if n.op_type == "Sigmoid"]
    assert sigmoid_sizes and max(sigmoid_sizes) <= 256 * 4, sigmoid_sizes  # softplus of the candidates' boxes
    from onnx.reference import ReferenceEvaluator

    reference = ReferenceEvaluator(str(result.path))
    feeds = {reference.input_names[0]: data.images}
    want = Engine(result.path, device="cpu").run(data.images)
    for name, have in zip(reference.output_names, reference.run(None, feeds)):
        np.testing.assert_allclose(np.asarray(have, np.float64), want[name], atol=1e-4, err_msg=name)
