"""Which execution providers a session asks ONNX Runtime for, with what options, and opening it quietly.

Kept apart from the Engine, which feeds frames: choosing CUDA, TensorRT or the CPU and reporting what is
missing is its own job, and the one that needs a GPU to test.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgemtl.errors import ConfigError, DeviceError, ModelFileError
from edgemtl.runtime.metadata import DYNAMIC, ModelMetadata
from edgemtl.runtime.modelfile import check_external_data

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
_ORT_LOG_WARNING, _ORT_LOG_FATAL = 2, 4


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


def check_model_path(path: Path) -> None:
    """ModelFileError for a path that is not a readable model file (every backend reads it after this)."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelFileError(f"model file {path} {what}: expected an .onnx file written by `edgemtl export`")
    check_external_data(path)


def open_session(
    path: Path, providers: list[str | tuple[str, dict[str, Any]]], options: ort.SessionOptions
) -> ort.InferenceSession:
    check_model_path(path)
    try:
        with _quiet_onnxruntime():
            return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...) for bad files
        raise ModelFileError(
            f"{path} is not a loadable ONNX model ({ort_reason(exc)}; onnxruntime {ort.__version__})"
        ) from None


_SOURCE_LOCATION = re.compile(r"\S+\.(?:cc|cpp|cxx|cu|h|hpp):\d+\s+")
_FUNCTION_START = re.compile(r"[\w:~<>*&, ]*?[\w>]\(")


def ort_reason(exc: Exception) -> str:
    """ORT's reason on one bounded line: without its "[ONNXRuntimeError] : 1 : FAIL :" prefix, its "Load model
    from X failed:" (the caller names the file), and the C++ source location and function signature it puts
    before the reason, so a long signature cannot push the reason itself past the bound."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    reason = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", lines[0])
    reason = re.sub(r"^Load model from .*? failed:\s*", "", reason)
    located = _SOURCE_LOCATION.search(reason)
    if located:
        rest = reason[located.end() :]
        function = _FUNCTION_START.match(rest)
        end = _closing_paren(rest, function.end() - 1) if function else -1
        reason = reason[: located.start()] + (rest[end + 1 :].lstrip(" :") if end >= 0 else rest)
    return reason.strip()[:300].rstrip() or type(exc).__name__


def _closing_paren(text: str, opening: int) -> int:
    """The index of the parenthesis closing the one at `opening`, or -1."""
    depth = 0
    for index in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return -1


def check_static_shapes(metadata: ModelMetadata, provider: str, path: Path) -> None:
    """TensorRT builds an engine per input shape: a camera whose frame size is not in the file would stall
    the pipeline for seconds while it builds one. A dynamic frame-sized file goes to CUDA or the CPU."""
    if provider == TENSORRT_PROVIDER and metadata.frame_size == DYNAMIC:
        raise ConfigError(
            f"{path.name} takes frames of any size (--frame-size dynamic), and TensorRT needs fixed shapes "
            "here: re-export with --frame-size HxW of the camera, or use device='cuda'"
        )
