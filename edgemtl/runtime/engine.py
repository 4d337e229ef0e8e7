"""The Engine: an exported edgemtl file in ONNX Runtime, fed camera frames, giving per-task results.

Imports numpy, onnxruntime and cv2 only, so it runs on a device without PyTorch.

The CPU path is tested everywhere; the CUDA path (I/O binding to device buffers allocated once, CUDA
graphs) by tests/runtime/test_gpu.py where a GPU is at hand (it ran on an H100). The TensorRT path (fp16, engine
cache) has NOT run: no machine it was tested on had TensorRT.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgemtl.errors import ConfigError, DeviceError, FrameError, ModelFileError
from edgemtl.resize import Fit, fit, resize_frame, restore_mask
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.modelfile import check_external_data
from edgemtl.runtime.results import Prediction, task_result
from edgemtl.tasks import TaskSpec

log = logging.getLogger("edgemtl")

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
# ONNX type strings of graph outputs → NumPy dtypes, to allocate bound output buffers.
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
_ORT_LOG_WARNING, _ORT_LOG_FATAL = 2, 4
_said_fallback = False


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Probing CUDA on a machine without it makes ORT print red errors; the Engine reports instead."""
    ort.set_default_logger_severity(_ORT_LOG_FATAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_LOG_WARNING)


@dataclass(frozen=True)
class EngineOptions:
    """How the session runs. Every default is what measured best for a camera pipeline, or is ORT's own."""

    threads: int | None = None  # intra-op threads; None: ORT's default, one per physical core
    optimization: str = "all"  # graph optimization level; "all" fuses Conv+BN+ReLU, most of ORT's speed-up
    spinning: bool = True  # idle ORT threads busy-wait for the next op: lowest latency alone, but they
    #                        take the CPU a pipeline's decode and overlay threads need (off there)
    io_binding: bool | None = None  # None: on with CUDA/TensorRT (device buffers allocated once, no per-run
    #                                 allocation); off on the CPU, where it measured no faster than run()
    cuda_graph: bool = False  # CUDA/TensorRT: capture the kernel launches once and replay them (per batch size)
    channels_last: bool = True  # CUDA: NHWC convolution kernels, which let fp16 use the tensor cores: on an
    #                             H100 fp16 then ran 1.07-1.19x faster than fp32 at batch 256 (README), fp32 ±5 %
    trt_fp16: bool = False  # TensorRT: let it choose fp16 kernels
    trt_cache_dir: Path | None = None  # TensorRT: built engines are kept in a sub-folder per model and versions

    def __post_init__(self) -> None:
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise ConfigError(
                f"unknown graph optimization level {self.optimization!r}: expected one of "
                f"{', '.join(OPTIMIZATION_LEVELS)}"
            )
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION_LEVELS[self.optimization]
        if self.threads:
            options.intra_op_num_threads = self.threads
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options


def tensorrt_cache_folder(root: Path, model: Path, fp16: bool) -> Path:
    """A TensorRT engine is only valid for the model, ORT and TensorRT versions and precision it was built for."""
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    try:
        trt_version = importlib.metadata.version("tensorrt")
    except importlib.metadata.PackageNotFoundError:
        trt_version = "unknown"
    return root / f"{model.stem}-{digest}-ort{ort.__version__}-trt{trt_version}-{'fp16' if fp16 else 'fp32'}"


def provider_list(device: str, options: EngineOptions, model: Path) -> list[str | tuple[str, dict[str, Any]]]:
    """The providers (with their options) to ask ORT for; raises when this onnxruntime build lacks them."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        return [CPU_PROVIDER]
    available = ort.get_available_providers()
    wanted = TENSORRT_PROVIDER if device == "tensorrt" else CUDA_PROVIDER
    if wanted not in available:
        if device == "auto":
            return [CPU_PROVIDER]
        raise DeviceError(
            f"device {device!r} requested but onnxruntime {ort.__version__} has no {wanted} "
            f"(it has {', '.join(available)}): install onnxruntime-gpu"
        )
    with _quiet_onnxruntime():
        ort.preload_dlls()  # finds CUDA/cuDNN from pip's nvidia-* packages, e.g. those PyTorch brought
    cuda = {"enable_cuda_graph": str(int(options.cuda_graph)), "prefer_nhwc": str(int(options.channels_last))}
    providers: list[str | tuple[str, dict[str, Any]]] = [(CUDA_PROVIDER, cuda), CPU_PROVIDER]
    if device == "tensorrt":
        trt: dict[str, Any] = {"trt_fp16_enable": options.trt_fp16, "trt_cuda_graph_enable": options.cuda_graph}
        if options.trt_cache_dir is not None:
            folder = tensorrt_cache_folder(Path(options.trt_cache_dir), model, options.trt_fp16)
            folder.mkdir(parents=True, exist_ok=True)
            trt |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(folder)}
        providers.insert(0, (TENSORRT_PROVIDER, trt))
    return providers


def _open_session(
    path: Path, providers: list[str | tuple[str, dict[str, Any]]], options: ort.SessionOptions
) -> ort.InferenceSession:
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelFileError(f"model file {path} {what}: expected an .onnx file written by `edgemtl export`")
    check_external_data(path)
    try:
        with _quiet_onnxruntime():
            return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...) for bad files
        raise ModelFileError(f"{path} is not a loadable ONNX model ({_ort_reason(exc)})") from None


def _ort_reason(exc: Exception) -> str:
    """ORT's message without its "[ONNXRuntimeError] : 1 : FAIL :" prefix, on one bounded line."""
    lines = str(exc).strip().splitlines()
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0]) if lines else type(exc).__name__
    return reason[:300].rstrip()


def _describe(array: object) -> str:
    if isinstance(array, np.ndarray):
        return f"shape {array.shape} and dtype {array.dtype}"
    return f"type {type(array).__name__}"


class _BoundRun:
    """One batch size's inputs and outputs bound to buffers on `device`, allocated once.

    On CUDA this skips ORT's per-run device allocations, and fixed buffer addresses are what CUDA
    graphs need. Output shapes come from the graph (batch axis set to `batch`); the model is not run.
    `graph_id`: with CUDA graphs, each batch size is captured as its own graph under this id.
    """

    def __init__(
        self, session: ort.InferenceSession, input_name: str, shape: tuple[int, ...], device: str, graph_id: int
    ) -> None:
        self.session = session
        self.device = device
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("gpu_graph_id", str(graph_id))
        self.binding = session.io_binding()
        self.input = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.uint8, device, 0)
        self.binding.bind_ortvalue_input(input_name, self.input)
        self.outputs = {}
        for output in session.get_outputs():
            dims = [shape[0], *output.shape[1:]]
            if not all(isinstance(d, int) for d in dims) or output.type not in _ONNX_DTYPES:
                raise ConfigError(
                    f"output {output.name} is {output.type} {output.shape}: I/O binding needs a static shape "
                    f"beyond the batch axis and one of {', '.join(_ONNX_DTYPES)}; use io_binding=False"
                )
            value = ort.OrtValue.ortvalue_from_shape_and_type(dims, _ONNX_DTYPES[output.type], device, 0)
            self.binding.bind_ortvalue_output(output.name, value)
            self.outputs[output.name] = value

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.input.update_inplace(frames)  # host → bound buffer; the address stays, as CUDA graphs require
        self.session.run_with_iobinding(self.binding, self.run_options)
        # numpy() of a CPU OrtValue is a view of the bound buffer, which the next run overwrites.
        return {name: value.numpy().copy() for name, value in self.outputs.items()}


class Engine:
    """Runs an edgemtl export on frames.

    `device="auto"` uses CUDA when this onnxruntime build and machine can, else the CPU (said once);
    `device="cuda"` / `"tensorrt"` fail with what is missing; `providers` tells what is actually in use.
    `threads` is a shorthand for `options.threads`. `predict` reuses one resize buffer, so call it from
    one thread per Engine (a pipeline does).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        options: EngineOptions | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        global _said_fallback
        self.path = Path(path)
        self.device = device
        self.options = options or EngineOptions()
        if threads is not None:
            self.options = dataclasses.replace(self.options, threads=threads)
        requested = provider_list(device, self.options, self.path) if self.path.is_file() else [CPU_PROVIDER]
        self.session = _open_session(self.path, requested, self.options.session_options())
        self.metadata = ModelMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        self.metadata.check_graph(self.session.get_inputs(), self.session.get_outputs(), str(self.path))
        wanted = requested[0][0] if isinstance(requested[0], tuple) else requested[0]
        if wanted not in self.providers:
            if device != "auto":
                raise DeviceError(
                    f"device {device!r} requested but {wanted} could not start: no GPU, or the CUDA 13 / "
                    "cuDNN 9 libraries (and for TensorRT, libnvinfer 10) are missing (pip install "
                    "nvidia-cudnn-cu13 or import a CUDA build of torch first); use device='cpu'"
                )
            if not _said_fallback:  # info, not a warning: a CPU-only machine is a normal place to run
                log.info("CUDA is not usable here (no GPU or CUDA libraries); running on the CPU")
                _said_fallback = True
        on_gpu = self.providers[0] != CPU_PROVIDER
        if self.options.cuda_graph and not on_gpu:
            raise ConfigError("CUDA graphs need device 'cuda' or 'tensorrt' running on a GPU, not the CPU")
        self.io_binding = on_gpu if self.options.io_binding is None else self.options.io_binding
        if self.options.cuda_graph and not self.io_binding:
            raise ConfigError("CUDA graphs replay fixed buffers: they need io_binding=True")
        self._bound: dict[int, _BoundRun] = {}  # batch size → its bound buffers
        self._input_name = self.metadata.input_name
        self._output_names = [o.name for o in self.session.get_outputs()]
        height, width = self.metadata.input_size
        self._input_shape = (height, width, 3)
        self._resized = np.empty(self._input_shape, np.uint8)  # predict's resize target, reused per frame
        self._fit: Fit | None = None  # the resize policy's boxes for the last frame size seen

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses, in priority order."""
        return self.session.get_providers()

    @property
    def tasks(self) -> tuple[TaskSpec, ...]:
        return self.metadata.tasks

    @property
    def input_size(self) -> tuple[int, int]:
        return self.metadata.input_size

    def describe(self) -> str:
        """One line for logs and benchmark tables: provider, I/O binding and CUDA-graph state."""
        graph = "on" if self.options.cuda_graph else "off"
        threads = self.options.threads or "default"
        return (
            f"{self.providers[0]}, I/O binding {'on' if self.io_binding else 'off'}, CUDA graphs {graph}, "
            f"threads {threads}, optimization {self.options.optimization}"
        )

    def warmup(self, runs: int = 3) -> None:
        """Run a few black frames: first runs allocate memory and pick kernels (and capture a CUDA graph),
        and would skew timings."""
        frames = np.zeros((self.metadata.batch or 1, *self._input_shape), dtype=np.uint8)
        for _ in range(runs):
            self.run(frames)

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Raw graph outputs by name for a batch of frames already at the model size: (N, H, W, 3) uint8."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.shape[1:] != self._input_shape:
            expected = f"(N, {', '.join(map(str, self._input_shape))}) uint8 BGR"
            raise FrameError(f"frames have {_describe(frames)}: expected {expected}")
        if self.metadata.batch and len(frames) != self.metadata.batch:
            raise FrameError(
                f"a batch of {len(frames)} frames: {self.path.name} was exported for batches of exactly "
                f"{self.metadata.batch} (re-export with --batch dynamic for any size)"
            )
        frames = np.ascontiguousarray(frames)
        if not self.io_binding:
            return dict(zip(self._output_names, self.session.run(self._output_names, {self._input_name: frames})))
        batch = len(frames)
        if batch not in self._bound:
            device = "cpu" if self.providers[0] == CPU_PROVIDER else "cuda"
            graph_id = len(self._bound)  # a new batch size gets a new CUDA graph; ignored without graphs
            self._bound[batch] = _BoundRun(self.session, self._input_name, frames.shape, device, graph_id)
        return self._bound[batch].run(frames)

    def prepare(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The frame as the model's input under the file's resize policy (`edgemtl.resize`: stretch,
        letterbox or crop, area averaging as in training), into `out` if given.

        `predict` does this itself; a pipeline calls it on its reader thread and passes the result as
        `predict(frame, prepared=...)`, so the resize overlaps the previous frame's inference.
        """
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise FrameError(f"frame has {_describe(frame)}: expected (H, W, 3) uint8 BGR")
        if frame.size == 0:
            raise FrameError(
                f"frame is {frame.shape[1]}x{frame.shape[0]} pixels (width x height): an empty frame has "
                "nothing to run on, expected at least 1x1"
            )
        return resize_frame(frame, self.fit(frame.shape[:2]), out)

    def fit(self, frame_size: tuple[int, int]) -> Fit:
        """Where a frame of this size goes in the input under the file's policy (kept for the last size)."""
        if self._fit is None or self._fit.frame_size != tuple(frame_size):
            self._fit = fit(tuple(frame_size), self.metadata.input_size, self.metadata.resize)
        return self._fit

    def predict(self, frame: np.ndarray, prepared: np.ndarray | None = None) -> Prediction:
        """Per-task results for one BGR frame of any size; masks come back at the frame's size, in its own
        coordinates (the letterbox padding cut away, a crop placed back where it was taken).

        `prepared`: `prepare(frame)` already done elsewhere (another thread); otherwise done here.
        """
        resized = self.prepare(frame, self._resized) if prepared is None else prepared
        batch = resized[np.newaxis]  # (1, H, W, 3); a fixed-batch export gets the frame repeated
        raw = self.run(
            np.broadcast_to(batch, (self.metadata.batch, *batch.shape[1:])) if self.metadata.batch else batch
        )
        where = self.fit(frame.shape[:2])
        results = {}
        for task in self.tasks:
            names = self.metadata.outputs[task.name]
            result = task_result(task, {field: raw[name][0] for field, name in names.items()}, self.input_size)
            if result.mask is not None and not where.identity:
                result = dataclasses.replace(result, mask=restore_mask(result.mask, where))
            results[task.name] = result
        return Prediction(results)


def describe_graph(path: str | Path) -> list[str]:
    """Inputs and outputs of any ONNX file, edgemtl export or not, as `name: type shape` lines."""
    session = _open_session(Path(path), [CPU_PROVIDER], ort.SessionOptions())
    lines = [f"input  {i.name}: {i.type} {i.shape}" for i in session.get_inputs()]
    lines += [f"output {o.name}: {o.type} {o.shape}" for o in session.get_outputs()]
    return lines
