"""OpenVINO's runtime as a backend: the `openvino` package (the optional extra `edgemtl[openvino]`), which reads
the exported .onnx file as it is, on x86 and ARM CPUs and on Intel GPUs and NPUs. Imported only when used.

Specs: `openvino` (the CPU at f32), `openvino:bf16`, `openvino:GPU`, `openvino:GPU.1:f16`: a device OpenVINO
lists here and/or an inference precision hint. The hint defaults to f32, not to OpenVINO's own default
(bf16 on a CPU that has it), because the hint changes results: bf16 and f16 are a choice, checked like one.

One graph fix is applied when a file is read: OpenVINO 2024-2026's CPU plugin ignores the `antialias`
attribute of an ONNX Resize (a frame-sized file's downscale), computing a plain bilinear resize
(docs/runtime.md, "OpenVINO"; benchmarks/openvino_antialias.py writes the minimal file for the upstream
report). Such a downscale with fixed sizes is rewritten into the same arithmetic as two MatMuls with
constant resampling matrices; one whose sizes are known only per frame is left, and the parity check
refuses it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.errors import DeviceError, ModelFileError
from edgemtl.runtime.backends.base import Port, Target
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.providers import EngineOptions

PRECISIONS = ("f32", "bf16", "f16")
_CAPABILITY = {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}
_ONNX_TYPES = {
    np.dtype(np.float32): "tensor(float)",
    np.dtype(np.float16): "tensor(float16)",
    np.dtype(np.int64): "tensor(int64)",
    np.dtype(np.int32): "tensor(int32)",
    np.dtype(np.uint8): "tensor(uint8)",
}
_KEEP_SHAPES = 4  # compiled batch sizes kept (oldest dropped first)
EXTRA = "pip install 'edgemtl[openvino]'"


@functools.cache
def _core() -> Any:
    """OpenVINO's Core, created once (it enumerates devices); DeviceError when the package is missing."""
    try:
        import openvino
    except ImportError:
        raise DeviceError(f"device 'openvino' needs the openvino package, which is not installed: {EXTRA}") from None
    return openvino.Core()


def _capabilities(device: str) -> list[str] | None:
    """What a device says it computes in ("FP32", "BF16", "FP16", "INT8", ...); None when it does not say."""
    try:
        return list(_core().get_property(device, "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # a device plugin without the property: tried as asked
        return None


def _full_name(device: str) -> str:
    """The device's model as OpenVINO names it ("Intel(R) Core(TM) i7-1185G7", "Intel(R) Iris(R) Xe Graphics")."""
    try:
        return str(_core().get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # a device plugin without the property: the verdict cache still keys on the CPU
        return ""


def antialias_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of a bilinear downscale with antialiasing along one axis, half-pixel
    centres: ONNX Resize's (and PyTorch's, and PIL's) tent filter widened by the scale, each row normalized
    over the input pixels it reaches (exclude_outside=1, as PyTorch exports it; OpenVINO's reader drops that
    attribute, so a file from elsewhere with exclude_outside=0 comes out differently at the borders, and the
    parity check refuses it)."""
    scale = size_in / size_out
    support = max(scale, 1.0)
    matrix = np.zeros((size_out, size_in), np.float64)
    for row in range(size_out):
        centre = scale * (row + 0.5)
        first = max(int(centre - support + 0.5), 0)
        last = min(int(centre + support + 0.5), size_in)
        pixels = np.arange(first, last)
        weights = np.clip(1 - np.abs((pixels - centre + 0.5) / support), 0, None)
        matrix[row, pixels] = weights / weights.sum()
    return matrix


def fix_antialias(model: Any) -> int:
    """Rewrite each antialiased linear downscale of fixed sizes over the last two axes (N, C, H, W → N, C, h, w)
    into MatMuls with `antialias_matrix` constants; returns how many were rewritten."""
    from openvino import opset13 as ops

    fixed = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Interpolate":
            continue
        attributes = op.get_attributes()
        if not attributes.get("antialias") or attributes.get("mode") not in ("linear", "linear_onnx"):
            continue
        if attributes.get("coordinate_transformation_mode") != "half_pixel":
            continue
        source = op.input_value(0)
        before, after = source.get_partial_shape(), op.get_output_partial_shape(0)
        if before.rank.is_dynamic or before.rank.get_length() != 4 or after.rank.get_length() != 4:
            continue
        if any(before[axis].is_dynamic or after[axis].is_dynamic for axis in (2, 3)):
            continue  # a dynamic frame size: left as it is, and the parity check refuses the file
        (height, width), (new_height, new_width) = (
            [shape[axis].get_length() for axis in (2, 3)] for shape in (before, after)
        )
        if new_height > height or new_width > width:
            continue
        dtype = source.get_element_type().to_dtype()
        value = source
        if new_width != width:
            value = ops.matmul(value, ops.constant(antialias_matrix(width, new_width).T.astype(dtype)), False, False)
        if new_height != height:
            value = ops.matmul(ops.constant(antialias_matrix(height, new_height).astype(dtype)), value, False, False)
        for consumer in op.output(0).get_target_inputs():
            consumer.replace_source_output(value if not hasattr(value, "output") else value.output(0))
        fixed += 1
    if fixed:
        model.validate_nodes_and_infer_types()
    return fixed


def _port(node: Any) -> Port:
    shape = tuple(d.get_length() if d.is_static else "?" for d in node.get_partial_shape())
    return Port(node.get_any_name(), _ONNX_TYPES.get(node.get_element_type().to_dtype(), "tensor(unknown)"), shape)


def _metadata(model: Any) -> dict[str, str]:
    """The file's metadata_props, which OpenVINO's ONNX reader keeps under rt_info["framework"]."""
    info = model.get_rt_info()
    if "framework" not in info:
        return {}
    framework = info["framework"]
    return {str(key): framework[key].astype(str) for key in framework}


class OpenVinoRunner:
    """A file compiled by OpenVINO for one device and precision; one infer request, run from one thread."""

    io_binding = False

    def __init__(self, path: Path, target: Target, options: EngineOptions) -> None:
        core = _core()
        self.target = target
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError with pages of frontend text
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path} is not a model OpenVINO can read ({reason})") from None
        self.metadata = _metadata(model)
        self.inputs = [_port(node) for node in model.inputs]
        self.outputs = [_port(node) for node in model.outputs]
        self.fixed = fix_antialias(model)
        self.path, self._model, self._core = path, model, core
        self._config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": target.precision, "PERFORMANCE_HINT": "LATENCY"}
        if options.threads:
            self._config["INFERENCE_NUM_THREADS"] = options.threads
        # Only the batch axis open (every file but a dynamic frame-sized one): each batch size is compiled with
        # static shapes, which ran ~30 % faster than the dynamic graph for nano; frames of any size share one.
        self._per_shape = all(isinstance(d, int) for d in self.inputs[0].shape[1:])
        self._requests: dict[tuple[int, ...] | None, tuple[Any, list[tuple[str, Any]]]] = {}
        self._request(None if not self._per_shape else (1, *self.inputs[0].shape[1:]))  # compile errors now
        self._providers = [f"OpenVINO {target.device} ({target.precision})"]
        self.device_name = _full_name(target.device)

    def _request(self, shape: tuple[int, ...] | None) -> tuple[Any, list[tuple[str, Any]]]:
        """The infer request for an input shape (None: the dynamic graph), compiled on first use."""
        if shape not in self._requests:
            model = self._model
            if shape is not None:
                model = self._model.clone()
                model.reshape({0: list(shape)})
            try:
                compiled = self._core.compile_model(model, self.target.device, self._config)
            except Exception as exc:
                reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                raise DeviceError(f"OpenVINO could not compile {self.path.name} for {self.target}: {reason}") from None
            # By position, named as the file names them: compiling may fuse an output into a node whose tensor
            # also carries an internal name (a multilabel's flags came back as 'gt_2'), which get_any_name can pick.
            outputs = [(port.name, node) for port, node in zip(self.outputs, compiled.outputs)]
            self._requests[shape] = (compiled.create_infer_request(), outputs)
            while len(self._requests) > _KEEP_SHAPES:
                del self._requests[next(iter(self._requests))]
        return self._requests[shape]

    @property
    def providers(self) -> list[str]:
        return self._providers

    def run(self, frames: np.ndarray, pool: BufferPool | None = None) -> dict[str, np.ndarray]:
        request, nodes = self._request(frames.shape if self._per_shape else None)
        request.infer({0: frames}, share_inputs=True)
        outputs = {}
        for name, node in nodes:
            data = request.get_tensor(node).data  # OpenVINO's own buffer: the next run overwrites it
            if pool is None:
                outputs[name] = data.copy()
            else:
                outputs[name] = array = pool.take(data.shape, data.dtype)
                np.copyto(array, data)
        return outputs


class OpenVinoBackend:
    name = "openvino"
    reference = False

    def claims(self, head: str) -> bool:
        return head.lower() == self.name

    def parse(self, spec: str) -> Target:
        """`openvino[:DEVICE][:PRECISION]`, either part optional, in either order; checked against this machine."""
        device, precision = "CPU", "f32"
        for part in spec.split(":")[1:]:
            if part.lower() in PRECISIONS:
                precision = part.lower()
            elif part:
                device = part.upper()
        core = _core()
        have = list(core.available_devices)
        if device not in have and device.split(".")[0] not in have:
            raise DeviceError(
                f"device {spec!r}: OpenVINO has no {device} on this machine (it has {', '.join(have) or 'none'}); "
                f"precisions: {', '.join(PRECISIONS)}"
            )
        capabilities = _capabilities(device)
        if capabilities is not None and _CAPABILITY[precision] not in capabilities:
            supported = [p for p, c in _CAPABILITY.items() if c in capabilities]
            raise DeviceError(
                f"device {spec!r}: OpenVINO's {device} does not support {precision} here "
                f"(it supports {', '.join(supported) or 'none of ' + ', '.join(PRECISIONS)})"
            )
        return Target(self.name, device, precision)

    def installed(self) -> bool:
        try:
            _core()
        except DeviceError:
            return False
        return True

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]

    def devices(self) -> list[str]:
        if not self.installed():
            return []
        specs = []
        for device in _core().available_devices:
            capabilities = _capabilities(device) or ["FP32"]
            for precision, capability in _CAPABILITY.items():
                if capability in capabilities:
                    specs.append(f"openvino:{device}:{precision}" if device != "CPU" else f"openvino:{precision}")
        return specs

    def open(self, path: Path, target: Target, options: EngineOptions) -> OpenVinoRunner:
        return OpenVinoRunner(path, target, options)
