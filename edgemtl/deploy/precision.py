"""fp16 and int8 versions of an exported fp32 graph, with the frame I/O left exactly as it was.

Both keep the in-graph preprocessing (uint8 → float, normalize, transpose) in fp32 and leave the
final softmax / argmax unquantized, so the file's contract (uint8 BGR in, float32 probabilities and
uint8 masks out) does not change with precision and the runtime needs no branch for it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxconverter_common import float16
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgemtl.errors import ConfigError, ExportError
from edgemtl.machine import cpu_has_vnni

PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
# The network's compute ops: quantizing only these leaves preprocessing (Cast, Sub, Mul, Transpose)
# and postprocessing (Softmax, ArgMax) in float, without naming nodes.
#
# ConvTranspose is not among them: ONNX Runtime's CPU provider has no int8 ConvTranspose, so a quantized
# one runs as DQ → float ConvTranspose → Q with its int8 weights dequantized again on every run. Left
# out, it keeps float weights (ORT's WeightBiasQuantization pass still re-quantizes the weights of one
# that sits between a DQ and a Q, per tensor, so nano's two 8×8/16×16 up-convolutions keep a weight DQ).
INT8_OPS = ("Conv", "Gemm", "Add", "Relu")
# Tensors narrower than this stay float. Nano is overhead-bound on a CPU (tens of µs per op), and the
# int8 kernels only pay where there is arithmetic to save. Profiled on nano at 128×128 (ORT 1.31, 2
# threads, VNNI): the 3 → 16 stem conv took 110 µs in int8 against 39 µs in float (NCHWc), the 16-channel
# 64×64 depthwise conv 62 µs against 21 µs, and each int8 region adds Transposes (ORT runs QLinearConv in
# NHWC) and Q/DQ at its borders. Keeping the < 32-channel layers in float (nano's stem, first stage and
# two finest decoder stages; small's stem and finest stage; nothing in base) together with float
# ConvTranspose took nano's int8 from 1.16× slower than fp32 to on par with it (0.78–0.84 ms for both,
# interleaved; kernels per run 1240 → 1072 µs against fp32's 1010), scene accuracy and mIoU within
# 0.5 point of fp32. small and base int8 were not slower than before.
MIN_INT8_CHANNELS = 32
CALIBRATION_BATCH = 16
FP32_POSTPROCESSING_OPS = ("Softmax", "Sigmoid", "ArgMax", "Greater")


def preprocessing_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes between the uint8 input and the first convolution (cast, normalize, transpose)."""
    names = []
    for node in proto.graph.node:  # topologically sorted, as ONNX requires
        if node.op_type == "Conv":
            break
        names.append(node.name)
    return names


def convert_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations to float16. Preprocessing stays fp32 (onnxconverter-common mis-types the
    uint8 → float Cast otherwise); softmax, sigmoid and argmax run on float32 logits, so probabilities
    keep full precision and near-ties resolve as in fp32; a detection task's box selection stays fp32
    (`selection_nodes`); graph inputs and outputs keep their types."""
    output_types = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    converted = float16.convert_float_to_float16(
        proto,
        keep_io_types=True,
        node_block_list=preprocessing_nodes(proto) + selection_nodes(proto),
        op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *FP32_POSTPROCESSING_OPS],
    )
    _restore_output_types(converted, output_types)
    return converted


def _restore_output_types(proto: onnx.ModelProto, types: dict[str, int]) -> None:
    """onnxconverter-common casts a blocked op's result back to fp16 even when it is a graph output
    (here: the softmax probabilities), despite keep_io_types; point that final Cast back at the
    original type."""
    producers = {name: node for node in proto.graph.node for name in node.output}
    for value in [*proto.graph.output, *proto.graph.value_info]:
        wanted = types.get(value.name)
        if wanted is None or value.type.tensor_type.elem_type == wanted:
            continue
        node = producers[value.name]
        if node.op_type != "Cast":
            raise ExportError(f"fp16 conversion changed the type of output {value.name!r}: re-export as fp32")
        next(a for a in node.attribute if a.name == "to").i = wanted
        value.type.tensor_type.elem_type = wanted


class _FrameReader(CalibrationDataReader):
    """ONNX Runtime's calibration interface over uint8 frames, a batch at a time."""

    def __init__(self, input_name: str, frames: np.ndarray) -> None:
        self.batches = iter(
            [{input_name: frames[i : i + CALIBRATION_BATCH]} for i in range(0, len(frames), CALIBRATION_BATCH)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer logs a line per tensor and prints advice; errors still surface as exceptions."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def float_nodes(
    proto: onnx.ModelProto, min_channels: int = MIN_INT8_CHANNELS, op_types: tuple[str, ...] = INT8_OPS
) -> list[str]:
    """The compute nodes left in float: those whose output has fewer than `min_channels` channels."""
    channels = {}
    for value in [*proto.graph.value_info, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[value.name] = dims[1].dim_value
    return [
        node.name
        for node in proto.graph.node
        if node.op_type in op_types and channels.get(node.output[0], min_channels) < min_channels
    ]


def _users(proto: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in proto.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _downstream(start: onnx.NodeProto, users: dict[str, list[onnx.NodeProto]]) -> Iterator[onnx.NodeProto]:
    stack, seen = list(start.output), set()
    while stack:
        for user in users.get(stack.pop(), []):
            if user.name not in seen:
                seen.add(user.name)
                stack.extend(user.output)
                yield user


def _reaches_conv(start: onnx.NodeProto, users: dict[str, list[onnx.NodeProto]]) -> bool:
    """Through what lies between convs: Add, Relu, Resize..."""
    return any(user.op_type in ("Conv", "Gemm", "ConvTranspose") for user in _downstream(start, users))


def end_nodes(proto: onnx.ModelProto) -> list[str]:
    """The first convolution, and each Conv/Gemm whose output reaches no other (transposed) convolution: a
    classification head's last layer. A segmentation head ends in a ConvTranspose, which is float anyway."""
    users = _users(proto)
    convs = [node for node in proto.graph.node if node.op_type in ("Conv", "Gemm")]
    return [node.name for node in convs[:1]] + [node.name for node in convs[1:] if not _reaches_conv(node, users)]


def selection_nodes(proto: onnx.ModelProto) -> list[str]:
    """What follows a Sigmoid or TopK and reaches no convolution: a detection task's box selection
    (edgemtl.kinds.box_select), kept fp32 in an fp16 file. In fp16 a box's area overflows above 65504
    square pixels (a 256×256 box) and coordinates past 1024 pixels step by 1, so IoU and ranks would change."""
    users, names = _users(proto), set()
    for node in proto.graph.node:
        if node.op_type in ("Sigmoid", "TopK") and node.name not in names and not _reaches_conv(node, users):
            names.add(node.name)
            names.update(user.name for user in _downstream(node, users))
    return [node.name for node in proto.graph.node if node.name in names]


def tail_nodes(proto: onnx.ModelProto) -> list[str]:
    """Quantizable element-wise nodes (Add, Relu) that reach no convolution: postprocessing (box decoding
    and selection), not the network, so int8 leaves them float."""
    users = _users(proto)
    return [
        node.name
        for node in proto.graph.node
        if node.op_type in INT8_OPS and node.op_type not in ("Conv", "Gemm") and not _reaches_conv(node, users)
    ]


INT8_FORMATS = ("QDQ", "QOperator")
INT8_WEIGHTS = ("int8", "uint8")


@dataclass(frozen=True)
class Int8Settings:
    """How an int8 file is quantized. The defaults are edgemtl's export (QDQ, per-channel int8 weights, uint8
    activations, layers narrower than MIN_INT8_CHANNELS left float); `benchmarks/int8_options.py` times the
    others that ONNX Runtime offers against them, at the presets' camera-shaped sizes."""

    format: str = "QDQ"  # or "QOperator" (QLinearConv nodes instead of Q/DQ pairs around float ones)
    weights: str = "int8"  # or "uint8" (u8u8 instead of u8s8)
    per_channel: bool = True  # False: one scale per weight tensor
    min_channels: int = MIN_INT8_CHANNELS  # narrower layers stay float; 0 quantizes every one
    float_ends: bool = False  # also keep float the first Conv and each Conv/Gemm that reaches no other (end_nodes)
    transposed: bool = False  # ConvTranspose in int8 too (INT8_RUNTIMES["openvino"])

    def __post_init__(self) -> None:
        for name, value, allowed in (("format", self.format, INT8_FORMATS), ("weights", self.weights, INT8_WEIGHTS)):
            if value not in allowed:
                raise ConfigError(f"int8 {name} {value!r} is not one of {', '.join(allowed)}")
        if self.min_channels < 0:
            raise ConfigError(f"int8 min_channels {self.min_channels} is negative: 0 quantizes every layer")

    def summary(self) -> dict[str, object]:
        """What the file's metadata records of these settings."""
        return {
            "format": self.format,
            "per_channel": self.per_channel,
            "weights": self.weights,
            "min_channels": self.min_channels,
            "float_ends": self.float_ends,
            "transposed": self.transposed,
        }

    @property
    def op_types(self) -> tuple[str, ...]:
        return (*INT8_OPS, "ConvTranspose") if self.transposed else INT8_OPS


#: The int8 file each CPU runtime runs fastest (`edgemtl export --int8-for`). OpenVINO has int8 transposed
#: convolutions, ONNX Runtime's CPU provider has not (see INT8_OPS): quantizing them too took base at
#: 384x640 under OpenVINO from 1.9x to 2.9x ONNX Runtime's fp32 speed, and the same file under ONNX Runtime
#: from 1.13x to 1.02x (2-core Xeon, 2026-12-06). The precision gate holds either file to the same bound.
INT8_RUNTIMES = {"onnxruntime": Int8Settings(), "openvino": Int8Settings(transposed=True)}


def int8_settings_for(runtime: str) -> Int8Settings:
    if runtime not in INT8_RUNTIMES:
        raise ConfigError(f"int8 for {runtime!r}: expected one of {', '.join(INT8_RUNTIMES)}")
    return INT8_RUNTIMES[runtime]


def quantize_int8(
    source: Path,
    target: Path,
    frames: np.ndarray,
    input_name: str,
    method: str = "minmax",
    reduce_range: bool | None = None,
    settings: Int8Settings = Int8Settings(),
) -> dict[str, object]:
    """Static quantization calibrated on `frames`, as `settings` say (by default QDQ, per-channel int8
    weights, uint8 activations).

    `reduce_range=None` decides from this machine's CPU; pass True when the target device lacks
    VNNI and this one has it. Returns the calibration summary that goes into the file's metadata.
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"unknown calibration method {method!r}: expected one of {', '.join(CALIBRATION_METHODS)}")
    if len(frames) == 0:
        raise ConfigError("int8 export needs calibration frames: got none")
    if reduce_range is None:
        reduce_range = not cpu_has_vnni()
    with tempfile.TemporaryDirectory() as folder, _quiet_quantizer():
        prepared = Path(folder) / "prepared.onnx"
        # shape inference + folding, as ORT recommends. auto_merge: a Resize by constant scales (the detection
        # head's upsampling) gives floor(1.0 × batch), which the Add after it meets as `batch`; only such
        # conflicting dimensions are merged, a graph without them infers as before
        quant_pre_process(str(source), str(prepared), auto_merge=True)
        proto = onnx.load(str(prepared))
        excluded = float_nodes(proto, settings.min_channels, settings.op_types) + tail_nodes(proto)
        excluded += end_nodes(proto) if settings.float_ends else []
        quantize_static(
            str(prepared),
            str(target),
            _FrameReader(input_name, frames),
            quant_format=QuantFormat.QOperator if settings.format == "QOperator" else QuantFormat.QDQ,
            op_types_to_quantize=list(settings.op_types),
            nodes_to_exclude=excluded,
            per_channel=settings.per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QUInt8 if settings.weights == "uint8" else QuantType.QInt8,
            calibrate_method=CALIBRATION_METHODS[method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )
    return {"method": method, "frames": len(frames), **settings.summary(), "reduce_range": reduce_range}
