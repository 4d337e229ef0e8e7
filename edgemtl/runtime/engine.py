"""The Engine: an exported edgemtl file in ONNX Runtime, fed camera frames, giving per-task results.

Imports numpy, onnxruntime and cv2 only, so it runs on a device without PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from edgemtl.errors import DeviceError, FrameError, ModelFileError
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.results import Prediction, task_result
from edgemtl.tasks import TaskSpec

log = logging.getLogger("edgemtl")

DEVICES = ("auto", "cpu", "cuda")
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
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


def _requested_providers(device: str) -> list[str]:
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in available:
        if device == "cuda":
            raise DeviceError(
                f"device 'cuda' requested but onnxruntime {ort.__version__} has no CUDA provider "
                f"(it has {', '.join(available)}): install onnxruntime-gpu"
            )
        return [CPU_PROVIDER]
    with _quiet_onnxruntime():
        ort.preload_dlls()  # finds CUDA/cuDNN from pip's nvidia-* packages, e.g. those PyTorch brought
    return [CUDA_PROVIDER, CPU_PROVIDER]


def _open_session(path: Path, providers: list[str], options: ort.SessionOptions) -> ort.InferenceSession:
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelFileError(f"model file {path} {what}: expected an .onnx file written by `edgemtl export`")
    try:
        with _quiet_onnxruntime():
            return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...) for bad files
        reason = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise ModelFileError(f"{path} is not a loadable ONNX model ({reason})") from None


def _describe(array: object) -> str:
    if isinstance(array, np.ndarray):
        return f"shape {array.shape} and dtype {array.dtype}"
    return f"type {type(array).__name__}"


class Engine:
    """Runs an edgemtl export on frames.

    `device="auto"` uses CUDA when this onnxruntime build and machine can, else the CPU (said once);
    `device="cuda"` fails with what is missing; `providers` tells what is actually in use.
    """

    def __init__(self, path: str | Path, device: str = "auto", *, threads: int | None = None) -> None:
        global _said_fallback
        self.path = Path(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        requested = _requested_providers(device)
        self.session = _open_session(self.path, requested, options)
        self.metadata = ModelMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        if CUDA_PROVIDER in requested and CUDA_PROVIDER not in self.providers:
            if device == "cuda":
                raise DeviceError(
                    "device 'cuda' requested but CUDAExecutionProvider could not start: no GPU, or the "
                    "CUDA 13 / cuDNN 9 libraries are missing (pip install nvidia-cudnn-cu13 or import a "
                    "CUDA build of torch first); use device='cpu'"
                )
            if not _said_fallback:
                log.warning("CUDA is not usable here (no GPU or CUDA libraries); running on the CPU")
                _said_fallback = True
        self._input_name = self.metadata.input_name
        self._output_names = [o.name for o in self.session.get_outputs()]
        height, width = self.metadata.input_size
        self._input_shape = (height, width, 3)

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

    def warmup(self, runs: int = 3) -> None:
        """Run a few black frames: first runs allocate memory and pick kernels, and would skew timings."""
        frames = np.zeros((1, *self._input_shape), dtype=np.uint8)
        for _ in range(runs):
            self.run(frames)

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Raw graph outputs by name for a batch of frames already at the model size: (N, H, W, 3) uint8."""
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.shape[1:] != self._input_shape:
            expected = f"(N, {', '.join(map(str, self._input_shape))}) uint8 BGR"
            raise FrameError(f"frames have {_describe(frames)}: expected {expected}")
        outputs = self.session.run(self._output_names, {self._input_name: np.ascontiguousarray(frames)})
        return dict(zip(self._output_names, outputs))

    def predict(self, frame: np.ndarray) -> Prediction:
        """Per-task results for one BGR frame of any size; masks come back at the frame's size."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise FrameError(f"frame has {_describe(frame)}: expected (H, W, 3) uint8 BGR")
        height, width = self.metadata.input_size
        resized = (
            frame
            if frame.shape[:2] == (height, width)
            else cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        )
        raw = self.run(resized[np.newaxis])
        results = {}
        for task in self.tasks:
            names = self.metadata.outputs[task.name]
            results[task.name] = task_result(
                task, {field: raw[name][0] for field, name in names.items()}, frame.shape[:2]
            )
        return Prediction(results)


def describe_graph(path: str | Path) -> list[str]:
    """Inputs and outputs of any ONNX file, edgemtl export or not, as `name: type shape` lines."""
    session = _open_session(Path(path), [CPU_PROVIDER], ort.SessionOptions())
    lines = [f"input  {i.name}: {i.type} {i.shape}" for i in session.get_inputs()]
    lines += [f"output {o.name}: {o.type} {o.shape}" for o in session.get_outputs()]
    return lines
