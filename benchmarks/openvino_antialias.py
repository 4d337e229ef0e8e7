"""The minimal file for the upstream report: OpenVINO's CPU plugin ignores ONNX Resize's `antialias=1`.

Writes one ONNX graph holding a single Resize (linear, half_pixel, antialias=1, exclude_outside=1: what a
frame-sized export's downscale of a 480x640 frame to a 128x128 network becomes), runs it in ONNX Runtime and
in OpenVINO, and prints the largest difference, beside the same graph with antialias=0 (where both agree).
Nothing binary is committed: the file is generated here.

    python benchmarks/openvino_antialias.py [-o resize_antialias.onnx]

Measured 2026-12-06, openvino 2026.4.1, onnxruntime 1.31.1, Intel Xeon (Sapphire Rapids) VM: antialias=1
differs by up to 144 (on 0..255 inputs), antialias=0 by 1.5e-5. OpenVINO's ONNX reader keeps the attribute
(its Interpolate-11 says antialias: True); the CPU plugin computes a plain bilinear resize. edgemtl's OpenVINO
backend rewrites such a Resize of fixed sizes into two MatMuls (edgemtl/runtime/backends/openvino_backend.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def resize_model(shape: tuple[int, ...], size: tuple[int, int], antialias: int = 1):
    """An ONNX model: x (float32 `shape`, NCHW) → Resize to `size` (height, width), linear, half_pixel."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [*shape[:2], *size])
    sizes = numpy_helper.from_array(np.array([*shape[:2], *size], np.int64), "sizes")
    node = helper.make_node(
        "Resize", ["x", "", "", "sizes"], ["y"], mode="linear", antialias=antialias, exclude_outside=antialias,
        coordinate_transformation_mode="half_pixel",
    )  # fmt: skip
    graph = helper.make_graph([node], "resize_antialias", [x], [y], initializer=[sizes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def compare(path: Path) -> float:
    """Largest |ONNX Runtime - OpenVINO (CPU, f32)| on one random input."""
    import onnxruntime as ort
    import openvino as ov

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    x = np.random.default_rng(0).random(shape, dtype=np.float32) * 255
    reference = session.run(None, {"x": x})[0]
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return float(np.abs(compiled(x)[0] - reference).max())


def main() -> None:
    import onnx
    import onnxruntime as ort
    import openvino as ov

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("resize_antialias.onnx"))
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, openvino {ov.__version__}")
    for antialias in (1, 0):
        path = args.output.with_stem(f"{args.output.stem}{antialias}")
        onnx.save(resize_model((1, 3, 480, 640), (128, 128), antialias), str(path))
        print(f"{path}: Resize 1x3x480x640 -> 128x128, antialias={antialias}: max |ORT - OpenVINO| {compare(path):.3g}")


if __name__ == "__main__":
    main()
