"""The Engine: an exported edgemtl file in ONNX Runtime, fed camera frames, giving per-task results.

Imports numpy, onnxruntime and cv2 only, so it runs on a device without PyTorch.

The CPU path is tested everywhere; the CUDA path (I/O binding to device buffers allocated once, CUDA
graphs) by tests/runtime/test_gpu.py where a GPU is at hand (it ran on an H100). The TensorRT path (fp16, engine
cache) has NOT run: no machine it was tested on had TensorRT.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemtl.errors import ConfigError, DeviceError, FrameError
from edgemtl.resize import Fit, fit, resize_frame, restore_boxes, restore_mask
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.features import check_rows, predict_rows
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.runtime.providers import (
    CPU_PROVIDER,
    EngineOptions,
    check_static_shapes,
    open_session,
    provider_list,
)
from edgemtl.runtime.results import Prediction, task_result
from edgemtl.tasks import TaskSpec

log = logging.getLogger("edgemtl")

# ONNX type strings of graph outputs → NumPy dtypes, to allocate bound output buffers.
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
_said_fallback = False
_KEEP_POOLED_SHAPES = 8  # input shapes whose pooled-output runs are kept (oldest dropped first)


def _describe(array: object) -> str:
    if isinstance(array, np.ndarray):
        return f"shape {array.shape} and dtype {array.dtype}"
    return f"type {type(array).__name__}"


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
        self.session = open_session(self.path, requested, self.options.session_options())
        self.metadata = ModelMetadata.from_props(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        self.metadata.check_graph(self.session.get_inputs(), self.session.get_outputs(), str(self.path))
        check_static_shapes(self.metadata, self.session.get_providers()[0], self.path)
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
        self._bound: dict[tuple[int, ...], _BoundRun] = {}  # input shape → its bound buffers
        self._pooled: dict[tuple[int, ...], _PooledRun | None] = {}  # input shape → its run into pooled outputs
        self._input_name = self.metadata.input_name
        self._output_names = [o.name for o in self.session.get_outputs()]
        self.features = self.metadata.features  # vector input: the features, in order; None for frames
        # None in a frame's shape: any size (a dynamic frame-sized file)
        self._input_shape = (*self.metadata.graph_size, 3) if self.features is None else (self.features.count,)
        self._input_dtype = np.uint8 if self.features is None else np.float32
        self._resized = np.empty((*self.metadata.input_size, 3), np.uint8)  # predict's resize target, reused
        self._frame_sized = self.metadata.frame_size is not None
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
        shape = self._input_shape
        if self.features is None:  # a dynamic frame-sized file is warmed at the network's size
            shape = tuple(size or model for size, model in zip(self._input_shape, (*self.metadata.input_size, 3)))
        frames = np.zeros((self.metadata.batch or 1, *shape), dtype=self._input_dtype)
        for _ in range(runs):
            self.run(frames)

    @property
    def frame_sized(self) -> bool:
        """The graph takes camera frames as they come and resizes them itself (`--frame-size`)."""
        return self._frame_sized

    def run(self, frames: np.ndarray, pool: BufferPool | None = None) -> dict[str, np.ndarray]:
        """Raw graph outputs by name for a batch of frames at the graph's input size: (N, H, W, 3) uint8
        (the model's size; a frame-sized file's frame size; a vector model: (N, F) float32 rows, checked as
        `predict_features` checks them).

        `pool`: without I/O binding to device buffers (the CPU's default), the outputs are written into
        arrays taken from it, to be given back by the caller (a pipeline, once the frame is written); with
        it, and for outputs whose shape the graph leaves open, each run returns new arrays.
        """
        if self.features is not None:
            frames = check_rows(frames, self.features, self.metadata.batch)
        elif not (
            isinstance(frames, np.ndarray)
            and frames.dtype == np.uint8
            and frames.ndim == 4
            and all(want in (None, got) for want, got in zip(self._input_shape, frames.shape[1:]))
        ):
            expected = f"(N, {', '.join('H' if d is None else str(d) for d in self._input_shape)}) uint8 BGR"
            raise FrameError(f"frames have {_describe(frames)}: expected {expected}")
        if self.metadata.batch and len(frames) != self.metadata.batch:
            raise FrameError(
                f"a batch of {len(frames)} frames: {self.path.name} was exported for batches of exactly "
                f"{self.metadata.batch} (re-export with --batch dynamic for any size)"
            )
        frames = np.ascontiguousarray(frames)
        pooled = self._pooled_run(frames.shape) if pool is not None and not self.io_binding else None
        if pooled is not None:
            return pooled.run(frames, pool)
        if not self.io_binding:
            return dict(zip(self._output_names, self.session.run(self._output_names, {self._input_name: frames})))
        if frames.shape not in self._bound:
            device = "cpu" if self.providers[0] == CPU_PROVIDER else "cuda"
            graph_id = len(self._bound)  # a new input shape gets a new CUDA graph; ignored without graphs
            self._bound[frames.shape] = _BoundRun(
                self.session, self._input_name, frames.shape, device, graph_id, self._input_dtype
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

    def prepare(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The frame as the model's input under the file's resize policy (`edgemtl.resize`: stretch,
        letterbox or crop, area averaging as in training), into `out` if given; a frame-sized file's frame
        as it is, checked against its size (the graph resizes).

        `predict` does this itself; a pipeline calls it on its reader thread and passes the result as
        `predict(frame, prepared=...)`, so the resize overlaps the previous frame's inference.
        """
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise FrameError(f"frame has {_describe(frame)}: expected (H, W, 3) uint8 BGR")
        if frame.size == 0:
            raise FrameError(
                f"frame is {frame.shape[0]}x{frame.shape[1]} pixels (height x width): an empty frame has "
                "nothing to run on, expected at least 1x1"
            )
        if self._frame_sized:  # the graph resizes; a fixed frame size must be the camera's
            if None not in self._input_shape and frame.shape != self._input_shape:
                height, width = self._input_shape[:2]
                raise FrameError(
                    f"frame is {frame.shape[0]}x{frame.shape[1]} (height x width): {self.path.name} takes camera "
                    f"frames of {height}x{width}; re-export with --frame-size {frame.shape[0]}x{frame.shape[1]} "
                    "or --frame-size dynamic"
                )
            return frame
        return resize_frame(frame, self.fit(frame.shape[:2]), out)

    def fit(self, frame_size: tuple[int, int]) -> Fit:
        """Where a frame of this size goes in the input under the file's policy (kept for the last size)."""
        if self._fit is None or self._fit.frame_size != tuple(frame_size):
            self._fit = fit(tuple(frame_size), self.metadata.input_size, self.metadata.resize)
        return self._fit

    def predict(
        self, frame: np.ndarray, prepared: np.ndarray | None = None, pool: BufferPool | None = None
    ) -> Prediction:
        """Per-task results for one BGR frame of any size; masks come back at the frame's size, in its own
        coordinates (the letterbox padding cut away, a crop placed back where it was taken).

        `prepared`: `prepare(frame)` already done elsewhere (another thread); otherwise done here.
        `pool`: the graph's outputs go into arrays from it (`run`), listed in `Prediction.buffers`, and the
        results view them: valid until the caller gives them back.
        """
        if self.features is not None:
            raise FrameError(
                f"{self.path.name} takes feature vectors ({self.features.count} features), not frames: "
                "use Engine.predict_features(rows)"
            )
        resized = self.prepare(frame, self._resized) if prepared is None else prepared
        batch = resized[np.newaxis]  # (1, H, W, 3); a fixed-batch export gets the frame repeated
        raw = self.run(
            np.broadcast_to(batch, (self.metadata.batch, *batch.shape[1:])) if self.metadata.batch else batch,
            pool,
        )
        prediction = self.results(raw, frame.shape[:2])
        if pool is not None:
            prediction.buffers = tuple(raw.values())
        return prediction

    def predict_batch(
        self,
        frames: Sequence[np.ndarray],
        prepared: Sequence[np.ndarray | None] | None = None,
        pool: BufferPool | None = None,
    ) -> list[Prediction]:
        """Per-task results for several frames (each of any size) in one run: several cameras, one tick.

        Needs an export with a dynamic batch axis (`metadata.batch is None`); a fixed-batch file takes its
        frames one `predict` at a time. `prepared[i]`: `prepare(frames[i])` already done elsewhere, or None.
        A frame-sized file is fed the frames themselves: frames of different sizes run one by one.
        `pool`: as for `predict`; the predictions of one run share its output arrays (each lists them).
        """
        if self.metadata.batch is not None:
            raise FrameError(
                f"a batch of {len(frames)} frames: {self.path.name} was exported for batches of exactly "
                f"{self.metadata.batch} (re-export with --batch dynamic, or predict one frame at a time)"
            )
        ready = prepared or [None] * len(frames)
        inputs = [self.prepare(f) if p is None else p for f, p in zip(frames, ready, strict=True)]
        if len({i.shape for i in inputs}) > 1:
            return [self.predict(frame, item, pool) for frame, item in zip(frames, inputs)]
        batch = np.stack(inputs, out=None if pool is None else pool.take((len(inputs), *inputs[0].shape)))
        raw = self.run(batch, pool)
        predictions = [self.results(raw, frame.shape[:2], i) for i, frame in enumerate(frames)]
        if pool is not None:
            pool.give_back(batch)  # the run is over: its input is free again
            for prediction in predictions:
                prediction.buffers = tuple(raw.values())
        return predictions

    def results(self, raw: dict[str, np.ndarray], frame_size: tuple[int, int], row: int = 0) -> Prediction:
        """Per-task results of frame `row` of a `run`'s outputs, masks at `frame_size` (height, width): mapped
        back under the resize policy, or already there in a frame-sized file."""
        where = None if self._frame_sized else self.fit(frame_size)
        results = {}
        for task in self.tasks:
            names = self.metadata.outputs[task.name]
            outputs = {field: raw[name][row] for field, name in names.items()}
            result = task_result(task, outputs, frame_size if where is None else self.input_size)
            if where is not None and result.mask is not None and not where.identity:
                result = dataclasses.replace(result, mask=restore_mask(result.mask, where))
            if where is not None and getattr(result, "boxes", None) is not None and not where.identity:
                result = dataclasses.replace(result, boxes=restore_boxes(result.boxes, where))
            results[task.name] = result
        overlay = raw[self.metadata.overlay["output"]][row] if self.metadata.overlay else None
        return Prediction(results, overlay)

    def predict_features(self, rows: np.ndarray) -> list[Prediction]:
        """Per-task results for each row of raw features: (N, F) or one (F,) row, columns in the order of
        `features.names`; the graph standardizes them. FeatureError for a wrong count or a NaN."""
        if self.features is None:
            raise FrameError(f"{self.path.name} takes camera frames, not feature vectors: use Engine.predict(frame)")
        rows = check_rows(rows, self.features, None)
        return predict_rows(self.run, rows, self.tasks, self.metadata.outputs, self.metadata.batch)


def describe_graph(path: str | Path) -> list[str]:
    """Inputs and outputs of any ONNX file, edgemtl export or not, as `name: type shape` lines."""
    session = open_session(Path(path), [CPU_PROVIDER], ort.SessionOptions())
    lines = [f"input  {i.name}: {i.type} {i.shape}" for i in session.get_inputs()]
    lines += [f"output {o.name}: {o.type} {o.shape}" for o in session.get_outputs()]
    return lines
