"""fp16 / int8 exports, their verification against PyTorch, fixed batch, Triton, and option checks."""

from dataclasses import replace

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgemtl.data import load_frames
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.deploy.precision import INT8_RUNTIMES, Int8Settings, end_nodes, quantize_int8
from edgemtl.deploy.triton import model_file, triton_config, write_triton_config
from edgemtl.deploy.verify import MetricComparison, VerificationReport
from edgemtl.errors import ConfigError, DataError, ExportError, FrameError
from edgemtl.metrics import primary_metric
from edgemtl.runtime import Engine
from edgemtl.runtime.scoring import score_engine
from edgemtl.train import load_checkpoint
from tests.deploy.kit import parse_triton_config


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return load_checkpoint(trained_run.best_checkpoint)


@pytest.fixture(scope="module")
def int8_export(checkpoint, tiny_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("int8") / "tiny.int8.onnx"
    options = ExportOptions(precision="int8", allow_degraded=True)  # a one-epoch model: the table is the point
    return export_onnx(
        checkpoint, path, options, verify_data=tiny_data.subset(slice(0, 16)), calibration_frames=tiny_data.images
    )


def test_int8_is_quantized_qdq_and_keeps_the_frame_contract(int8_export):
    proto = onnx.load(str(int8_export.path))
    onnx.checker.check_model(proto, full_check=True)
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    session = ort.InferenceSession(str(int8_export.path), providers=["CPUExecutionProvider"])
    probs, labels, masks = session.run(None, {"frames": np.zeros((2, 32, 32, 3), np.uint8)})
    assert probs.dtype == np.float32 and labels.dtype == np.int64 and masks.dtype == np.uint8
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_int8_metadata_records_precision_and_calibration(int8_export):
    metadata = Engine(int8_export.path, device="cpu").metadata
    assert metadata.precision == "int8"
    assert metadata.calibration["frames"] == 48 and metadata.calibration["method"] == "minmax"
    assert metadata.calibration["format"] == "QDQ" and metadata.calibration["per_channel"] is True
    assert any("calibration" in line for line in metadata.describe())


def test_int8_settings_change_what_is_quantized(checkpoint, tiny_data, tmp_path):
    """The settings benchmarks/int8_options.py compares: each leaves its mark on the graph."""
    fp32 = export_onnx(checkpoint, tmp_path / "fp32.onnx").path
    frames = tiny_data.images[:16]

    def quantized(**changes) -> onnx.ModelProto:
        target = tmp_path / f"q{len(list(tmp_path.iterdir()))}.onnx"
        quantize_int8(fp32, target, frames, "frames", settings=replace(Int8Settings(min_channels=0), **changes))
        return onnx.load(str(target))

    def float_convs(proto: onnx.ModelProto) -> int:  # under QOperator a quantized one is QLinearConv / QGemm
        return sum(node.op_type in ("Conv", "Gemm") for node in proto.graph.node)

    every = quantized()
    assert any(n.op_type == "DequantizeLinear" for n in every.graph.node)  # QDQ: float ops between Q/DQ pairs
    qoperator = quantized(format="QOperator")
    assert any(n.op_type == "QLinearConv" for n in qoperator.graph.node) and float_convs(qoperator) < float_convs(every)
    graph = onnx.load(str(fp32)).graph
    ends = end_nodes(onnx.load(str(fp32)))
    kinds = {node.name: node.op_type for node in graph.node}
    first_conv = next(node.name for node in graph.node if node.op_type == "Conv")
    assert ends[0] == first_conv and [kinds[n] for n in ends[1:]] == ["Gemm"]  # the mask's last is a ConvTranspose
    kept = quantized(format="QOperator", float_ends=True)
    assert float_convs(kept) == float_convs(qoperator) + len(ends)

    with pytest.raises(ConfigError, match="int8 format 'qoperator' is not one of QDQ, QOperator"):
        Int8Settings(format="qoperator")

    def largest_weight_scale(proto: onnx.ModelProto) -> int:  # elements: 1 per tensor, the channels per channel
        return max(int(np.prod(i.dims)) for i in proto.graph.initializer if i.name.endswith("weight_scale"))

    assert largest_weight_scale(every) > 1 and largest_weight_scale(quantized(per_channel=False)) == 1

    def int8_transposed(proto: onnx.ModelProto) -> int:  # ConvTranspose nodes whose weights are int8
        producers = {output: node.op_type for node in proto.graph.node for output in node.output}
        convs = [node for node in proto.graph.node if node.op_type == "ConvTranspose"]
        return sum(producers.get(node.input[1]) == "DequantizeLinear" for node in convs)

    assert int8_transposed(every) == 0 < int8_transposed(quantized(transposed=INT8_RUNTIMES["openvino"].transposed))
    with pytest.raises(ConfigError, match="int8 for 'tensorrt': expected one of onnxruntime, openvino"):
        ExportOptions(precision="int8", int8_for="tensorrt").validate(checkpoint)


def test_verification_table_compares_every_task(int8_export):
    report = int8_export.verification
    assert [(c.task, c.metric) for c in report.comparisons] == [("scene", "accuracy"), ("segmentation", "miou")]
    assert report.frames == 16 and report.size_bytes == int8_export.size_bytes and report.latency_ms > 0
    lines = report.lines()
    assert "int8 file" in lines[0] and len(lines) == 4


def test_an_int8_export_says_how_it_runs_beside_fp32_here(int8_export):
    """The verdict follows the measured ratio (either way on a shared machine): it is never left unsaid."""
    speed = int8_export.speed
    assert speed.precision == "int8" and speed.ms > 0 and speed.fp32_ms > 0
    assert speed.speedup == speed.fp32_ms / speed.ms
    verdict = "slower than fp32 on this machine: keep fp32" if speed.speedup < 1 else "faster than fp32"
    assert verdict in speed.line() and f"{speed.speedup:.2f}x" in speed.line()
    if speed.openvino_ms is not None:  # timed on both runtimes where openvino is installed (.[dev] has it)
        assert speed.openvino_fp32_ms > 0 and "in OpenVINO" in speed.line()


def test_fp16_keeps_io_types_and_halves_the_weights(checkpoint, exported_model, tiny_data, tmp_path):
    result = export_onnx(
        checkpoint,
        tmp_path / "tiny.fp16.onnx",
        ExportOptions(precision="fp16"),
        verify_data=tiny_data.subset(slice(0, 8)),
    )
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.type.tensor_type.elem_type for o in proto.graph.output] == [
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT64,
        onnx.TensorProto.UINT8,
    ]
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    typed = onnx.shape_inference.infer_shapes(proto).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*typed.value_info, *typed.input, *typed.output]}
    finals = [n for n in typed.node if n.op_type in ("Softmax", "ArgMax")]
    assert finals and all(types[n.input[0]] == onnx.TensorProto.FLOAT for n in finals), "softmax/argmax run in fp32"
    assert result.size_bytes < 0.7 * exported_model.stat().st_size
    assert all(c.drop <= 0.5 for c in result.verification.comparisons)


def test_degraded_export_is_refused_unless_allowed(checkpoint, tiny_data, tmp_path, monkeypatch):
    def lossy(path, model, preprocess, data, precision, max_drop, batch_size):
        return VerificationReport(
            precision, len(data), (MetricComparison("segmentation", "miou", 0.80, 0.75),), max_drop, 1, 1.0
        )

    monkeypatch.setattr("edgemtl.deploy.onnx_export.compare_metrics", lossy)
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"segmentation miou 0\.8000 -> 0\.7500 \(-5\.00 points\).*--allow-degraded"):
        export_onnx(checkpoint, target, verify_data=tiny_data.subset(slice(0, 4)))
    assert not target.exists()
    kept = export_onnx(
        checkpoint, target, ExportOptions(allow_degraded=True), verify_data=tiny_data.subset(slice(0, 4))
    )
    assert kept.path.exists() and kept.verification.failures


def test_fixed_batch_and_triton_repository(checkpoint, tiny_data, tmp_path):
    repository = tmp_path / "models"
    path = model_file(repository, "nav")
    path.parent.mkdir(parents=True)
    result = export_onnx(checkpoint, path, ExportOptions(batch=2), verify_data=tiny_data.subset(slice(0, 4)))
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 32, 32, 3] and result.metadata.batch == 2
    config = write_triton_config(repository, "nav", result.metadata).read_text()
    assert parse_triton_config(config).max_batch_size == 0
    assert 'name: "nav"' in config and "max_batch_size: 0" in config and "dynamic_batching" not in config
    assert 'name: "frames"\n    data_type: TYPE_UINT8\n    dims: [2, 32, 32, 3]' in config


def test_triton_config_of_a_dynamic_batch_export(exported_model):
    config = triton_config(exported_model, "nav", Engine(exported_model, device="cpu").metadata)
    parsed = parse_triton_config(config)
    assert parsed.max_batch_size == 32 and parsed.backend == "onnxruntime"
    assert all(list(o.dims) for o in parsed.output), "Triton rejects outputs with empty dims"
    label = next(o for o in parsed.output if o.name == "scene_label")
    assert list(label.dims) == [1] and label.HasField("reshape") and list(label.reshape.shape) == []
    assert "max_batch_size: 32" in config and "dynamic_batching" in config
    assert 'name: "frames"\n    data_type: TYPE_UINT8\n    dims: [32, 32, 3]' in config
    assert 'name: "segmentation_mask"\n    data_type: TYPE_UINT8\n    dims: [32, 32]' in config
    assert 'name: "scene_probs"\n    data_type: TYPE_FP32\n    dims: [4]' in config
    assert '\\"left\\"' in config, "class names travel in the config's parameters"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (ExportOptions(precision="int4"), "unknown precision 'int4'"),
        (ExportOptions(opset=9), "opset 9 cannot carry"),
        (ExportOptions(batch=0), "batch 0"),
        (ExportOptions(input_size=(100, 100)), "multiples of 32"),
        (ExportOptions(calibration_method="magic"), "unknown calibration method 'magic'"),
        (ExportOptions(max_drop=-1), "max drop -1"),
    ],
)
def test_bad_options_fail_before_any_work(checkpoint, options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        options.validate(checkpoint)


def test_int8_without_calibration_frames_is_refused(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="calibration frames"):
        export_onnx(checkpoint, tmp_path / "m.onnx", ExportOptions(precision="int8"))


def test_frames_of_the_wrong_size_are_refused(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="calibration frames are 16x16, the export is 32x32"):
        export_onnx(
            checkpoint,
            tmp_path / "m.onnx",
            ExportOptions(precision="int8"),
            calibration_frames=np.zeros((4, 16, 16, 3), np.uint8),
        )


def test_calibration_folder_problems_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_frames(tmp_path / "missing", (32, 32))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_frames(tmp_path / "empty", (32, 32))
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "frames" / "b.png"), np.zeros((48, 32, 3), np.uint8))
    with pytest.raises(DataError, match=r"1 calibration images .* are not 32x32 \(first: b\.png\)"):
        load_frames(tmp_path / "frames", (32, 32))
    assert load_frames(tmp_path / "frames", (32, 32), limit=1).shape == (1, 32, 32, 3)


def test_engine_runs_a_fixed_batch_export(checkpoint, tmp_path, frame):
    path = export_onnx(checkpoint, tmp_path / "batch3.onnx", ExportOptions(batch=3)).path
    engine = Engine(path, device="cpu")
    engine.warmup(1)
    assert engine.predict(frame)["segmentation"].mask.shape == frame.shape[:2]
    assert engine.run(np.zeros((3, 32, 32, 3), np.uint8))["scene_probs"].shape == (3, 4)
    with pytest.raises(FrameError, match="batches of exactly 3"):
        engine.run(np.zeros((2, 32, 32, 3), np.uint8))


def test_a_fixed_batch_export_scores_any_number_of_frames(checkpoint, tmp_path, tiny_data):
    five = tiny_data.subset(slice(0, 5))  # verification pads the last batch of 3
    result = export_onnx(checkpoint, tmp_path / "batch3.onnx", ExportOptions(batch=3), verify_data=five)
    assert result.verification.frames == 5
    fixed = Engine(result.path, device="cpu")
    dynamic = Engine(export_onnx(checkpoint, tmp_path / "dynamic.onnx").path, device="cpu")
    images, targets = tiny_data.images[:7], {name: t[:7] for name, t in tiny_data.targets.items()}
    scores = [score_engine(engine, images, targets, batch_size=7) for engine in (fixed, dynamic)]
    for task in fixed.tasks:
        metric = primary_metric(task)
        assert scores[0][task.name][metric] == pytest.approx(scores[1][task.name][metric], abs=1e-6)
