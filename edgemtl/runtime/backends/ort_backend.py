"""ONNX Runtime as a backend: the CPU (the reference every other backend is checked against), CUDA and
TensorRT, with the providers, I/O binding and CUDA graphs of `edgemtl.runtime.providers`.

The CPU path is tested everywhere; the CUDA path (I/O binding to device buffers allocated once, CUDA
graphs) by tests/runtime/test_gpu.py where a GPU is at hand (it ran on an H100). The TensorRT path (fp16,
engine cache) has NOT run: no machine it was tested on had TensorRT.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemtl.errors import ConfigError, DeviceError
from edgemtl.runtime.backends.base import Port, Target
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.providers import CPU_PROVIDER, EngineOptions, open_session, provider_list

log = logging.getLogger("edgemtl")

ORT_DEVICES = ("cpu", "cuda", "tensorrt")
# ONNX type strings of graph outputs → NumPy dtypes, to allocate bound output buffers.
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
_KEEP_POOLED_SHAPES = 8  # input shapes whose pooled-output runs are kept (oldest dropped first)
_said_fallback = False


def output_shapes(
    session: ort.InferenceSession, input_name: str, shape: tuple[int, ...]
) -> dict[str, tuple[list[int], type[np.generic]]]:
    """Each output's shape and dtype for an input of `shape`, from the graph alone (the model is not run):
    the batch axis, and a dynamic frame-sized file's height and width, take their values from the input."""
    graph_input = next(i for i in session.get_inputs() if i.name == input_name)
    symbols = {axis: size for axis, size in zip(graph_input.shape, shape) if not isinstance(axis, int)}
    shapes = {}
    for output in session.get_outputs():
        dims = [shape[0], *(symbols.get(axis, axis) for axis in output.shape[1:])]
        if not all(isinstance(d, int) for d in dims) or output.type not in _ONNX_DTYPES:
            raise ConfigError(
                f"output {output.name} is {output.type} {output.shape}: I/O binding needs a static shape "
                f"beyond the batch axis and one of {', '.join(_ONNX_DTYPES)}; use io_binding=False"
            )
        shapes[output.name] = (dims, _ONNX_DTYPES[output.type])
    return shapes


class _BoundRun:
    """One input shape's (batch size's, and frame size's) inputs and outputs bound to buffers on `device`,
    allocated once.

    On CUDA this skips ORT's per-run device allocations, and fixed buffer addresses are what CUDA
    graphs need. `graph_id`: with CUDA graphs, each batch size is captured as its own graph under this id.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        input_name: str,
        shape: tuple[int, ...],
        device: str,
        graph_id: int,
        dtype: type[np.generic] = np.uint8,
    ) -> None:
        self.session = session
        self.device = device
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("gpu_graph_id", str(graph_id))
        self.binding = session.io_binding()
        self.input = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device, 0)
        self.binding.bind_ortvalue_input(input_name, self.input)
        self.outputs = {}
        for name, (dims, output_dtype) in output_shapes(session, input_name, shape).items():
            value = ort.OrtValue.ortvalue_from_shape_and_type(dims, output_dtype, device, 0)
            self.binding.bind_ortvalue_output(name, value)
            self.outputs[name] = value

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.input.update_inplace(frames)  # host → bound buffer; the address stays, as CUDA graphs require
        self.session.run_with_iobinding(self.binding, self.run_options)
        # numpy() of a CPU OrtValue is a view of the bound buffer, which the next run overwrites.
        return {name: value.numpy().copy() for name, value in self.outputs.items()}


class _PooledRun:
    """One input shape's run on the CPU with its outputs written straight into arrays from a `BufferPool`:
    nothing is allocated per run once the pool holds the frames in flight."""

    def __init__(self, session: ort.InferenceSession, input_name: str, shape: tuple[int, ...]) -> None:
        self.session, self.input_name = session, input_name
        self.binding = session.io_binding()
        self.shapes = output_shapes(session, input_name, shape)

    def run(self, frames: np.ndarray, pool: BufferPool) -> dict[str, np.ndarray]:
        self.binding.bind_cpu_input(self.input_name, frames)  # the array's own memory, not a copy
        outputs = {}
        for name, (dims, dtype) in self.shapes.items():
            outputs[name] = array = pool.take(tuple(dims), dtype)
            self.binding.bind_output(name, "cpu", 0, dtype, dims, array.ctypes.data)
        self.session.run_with_iobinding(self.binding)
        return outputs


class OrtRunner:
    """A file in an ONNX Runtime session. `target.device` "auto": CUDA when it starts here, else the CPU."""

    def __init__(self, path: Path, target: Target, options: EngineOptions) -> None:
        global _said_fallback
        self.target, self.options = target, options
        self.device_name = ""  # ORT does not name its GPU; the verdict cache keys on this machine's CPU
        requested = provider_list(target.device, options, path)
        self.session = open_session(path, requested, options.session_options())
        wanted = requested[0][0] if isinstance(requested[0], tuple) else requested[0]
        if wanted not in self.providers:
            if target.device != "auto":
                raise DeviceError(
                    f"device {target.device!r} requested but {wanted} could not start: no GPU, or the CUDA 13 / "
                    "cuDNN 9 libraries (and for TensorRT, libnvinfer 10) are missing (pip install "
                    "nvidia-cudnn-cu13 or import a CUDA build of torch first); use device='cpu'"
                )
            if not _said_fallback:  # info, not a warning: a CPU-only machine is a normal place to run
                log.info("CUDA is not usable here (no GPU or CUDA libraries); running on the CPU")
                _said_fallback = True
        self.inputs = [Port(i.name, i.type, tuple(i.shape)) for i in self.session.get_inputs()]
        self.outputs = [Port(o.name, o.type, tuple(o.shape)) for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        on_gpu = self.providers[0] != CPU_PROVIDER
        if options.cuda_graph and not on_gpu:
            raise ConfigError("CUDA graphs need device 'cuda' or 'tensorrt' running on a GPU, not the CPU")
        self.io_binding = on_gpu if options.io_binding is None else options.io_binding
        if options.cuda_graph and not self.io_binding:
            raise ConfigError("CUDA graphs replay fixed buffers: they need io_binding=True")
        self._input_name = self.inputs[0].name
        self._output_names = [o.name for o in self.outputs]
        self._bound: dict[tuple[int, ...], _BoundRun] = {}  # input shape → its bound buffers
        self._pooled: dict[tuple[int, ...], _PooledRun | None] = {}  # input shape → its run into pooled outputs

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, frames: np.ndarray, pool: BufferPool | None = None) -> dict[str, np.ndarray]:
        pooled = self._pooled_run(frames.shape) if pool is not None and not self.io_binding else None
        if pooled is not None:
            return pooled.run(frames, pool)
        if not self.io_binding:
            return dict(zip(self._output_names, self.session.run(self._output_names, {self._input_name: frames})))
        if frames.shape not in self._bound:
            device = "cpu" if self.providers[0] == CPU_PROVIDER else "cuda"
            graph_id = len(self._bound)  # a new input shape gets a new CUDA graph; ignored without graphs
            self._bound[frames.shape] = _BoundRun(
                self.session, self._input_name, frames.shape, device, graph_id, frames.dtype.type
            )
        return self._bound[frames.shape].run(frames)

    def _pooled_run(self, shape: tuple[int, ...]) -> _PooledRun | None:
        """The run into pooled outputs for this input shape; None when a graph output's shape or type cannot
        be known beforehand (a file from elsewhere), and `session.run` allocates them as before. The last
        few shapes are kept: a folder of photos through a dynamic frame-sized file brings a new one each."""
        if shape not in self._pooled:
            try:
                self._pooled[shape] = _PooledRun(self.session, self._input_name, shape)
            except ConfigError:
                self._pooled[shape] = None
            while len(self._pooled) > _KEEP_POOLED_SHAPES:
                del self._pooled[next(iter(self._pooled))]
        return self._pooled[shape]


class OrtBackend:
    name = "onnxruntime"
    reference = True

    def claims(self, head: str) -> bool:
        return head in (*ORT_DEVICES, "auto")

    def parse(self, spec: str) -> Target:
        if spec not in (*ORT_DEVICES, "auto"):
            raise DeviceError(f"unknown device {spec!r}: expected one of {', '.join(ORT_DEVICES)}")
        return Target(self.name, spec)

    def installed(self) -> bool:
        return True

    def version(self) -> str:
        return ort.__version__

    def devices(self) -> list[str]:
        available = ort.get_available_providers()
        names = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
        return ["cpu", *(device for device, provider in names.items() if provider in available)]

    def open(self, path: Path, target: Target, options: EngineOptions) -> OrtRunner:
        return OrtRunner(path, target, options)
