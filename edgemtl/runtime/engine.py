"""The Engine: an exported edgemtl file fed camera frames, giving per-task results.

What runs the graph is a backend (`edgemtl.runtime.backends`: ONNX Runtime on the CPU, CUDA or TensorRT, or
OpenVINO), chosen by `device`; the Engine checks frames, resizes them and builds results the same way
whatever it is. Imports numpy, onnxruntime and cv2 only (openvino when asked for), so it runs on a device
without PyTorch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemtl.errors import FrameError, ModelFileError
from edgemtl.resize import Fit, fit, resize_frame, restore_boxes, restore_mask
from edgemtl.runtime.backends import Runner, Target, open_runner
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.features import check_rows, predict_rows
from edgemtl.runtime.providers import CPU_PROVIDER, EngineOptions, check_static_shapes, open_session
from edgemtl.runtime.results import Prediction, task_result
from edgemtl.runtime.verified import Verdict, verification_inputs
from edgemtl.tasks import TaskSpec

log = logging.getLogger("edgemtl")


def _describe(array: object) -> str:
    if isinstance(array, np.ndarray):
        return f"shape {array.shape} and dtype {array.dtype}"
    return f"type {type(array).__name__}"


class Engine:
    """Runs an edgemtl export on frames.

    `device="auto"` uses CUDA when this onnxruntime build and machine can, else OpenVINO on the CPU when it is
    installed, verified for this file and faster, else ONNX Runtime on the CPU (why, said once at info level);
    `"cpu"`, `"cuda"`, `"tensorrt"`, `"openvino[:DEVICE][:PRECISION]"` ask for one (`edgemtl.runtime.backends`)
    and fail with what is missing; a backend other than ONNX Runtime on the CPU serves only after its outputs
    matched the CPU's (ParityError otherwise). `providers` and `target` tell what is actually in use.
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
        self.path = Path(path)
        self.device = device
        self.options = options or EngineOptions()
        if threads is not None:
            self.options = dataclasses.replace(self.options, threads=threads)
        opened = open_runner(self.path, device, self.options)
        self.runner: Runner = opened.runner
        self.metadata = opened.metadata
        self.verdict: Verdict | None = opened.verdict  # the parity check a non-reference backend passed
        self.choice = opened.reason  # under device="auto": what it chose and why
        self.metadata.check_graph(self.runner.inputs, self.runner.outputs, str(self.path))
        check_static_shapes(self.metadata, self.providers[0], self.path)
        self.io_binding = self.runner.io_binding
        self.features = self.metadata.features  # vector input: the features, in order; None for frames
        # None in a frame's shape: any size (a dynamic frame-sized file)
        self._input_shape = (*self.metadata.graph_size, 3) if self.features is None else (self.features.count,)
        self._input_dtype = np.uint8 if self.features is None else np.float32
        self._resized = np.empty((*self.metadata.input_size, 3), np.uint8)  # predict's resize target, reused
        self._frame_sized = self.metadata.frame_size is not None
        self._fit: Fit | None = None  # the resize policy's boxes for the last frame size seen
        self._probe_classes()

    @property
    def providers(self) -> list[str]:
        """What really runs the graph, in priority order: ONNX Runtime's execution providers, or OpenVINO's
        device and precision."""
        return self.runner.providers

    @property
    def target(self) -> Target:
        """The backend and device that serve the file (`str()` of it is a `--device` spec)."""
        return self.runner.target

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session (onnxruntime targets only)."""
        return self.runner.session

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
        return self.runner.run(np.ascontiguousarray(frames), pool)

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
        """Per-task results of frame `row` of a `run`'s outputs, masks at `frame_size` (height, width) and boxes
        in its pixels: mapped back under the resize policy, or already there in a frame-sized file."""
        where = None if self._frame_sized else self.fit(frame_size)
        results = {}
        for task in self.tasks:
            names = self.metadata.outputs[task.name]
            outputs = {field: raw[name][row] for field, name in names.items()}
            if "mask" in outputs:
                self._check_mask_ids(task, names["mask"], outputs["mask"])
            result = task_result(task, outputs, frame_size if where is None else self.input_size)
            if where is not None and result.mask is not None and not where.identity:
                result = dataclasses.replace(result, mask=restore_mask(result.mask, where))
            if where is not None and result.objects is not None and not where.identity:  # boxes to frame pixels
                objects = result.objects.with_boxes(restore_boxes(result.objects.boxes, where))
                result = dataclasses.replace(result, objects=objects)
            results[task.name] = result
        overlay = raw[self.metadata.overlay["output"]][row] if self.metadata.overlay else None
        return Prediction(results, overlay)

    def _check_mask_ids(self, task: TaskSpec, output: str, mask: np.ndarray) -> None:
        """A mask id the metadata has no class for: the file's metadata and graph disagree (refused at once,
        before a caller draws or writes anything with classes that do not exist)."""
        high = int(mask.max(initial=0))
        if high >= len(task.classes):
            raise ModelFileError(
                f"{self.path}: metadata field edgemtl.tasks gives task {task.name!r} {len(task.classes)} classes "
                f"({', '.join(task.classes)}), but graph output {output!r} holds class id {high}: the metadata "
                "and the graph disagree; re-export the file"
            )

    def _probe_classes(self) -> None:
        """One deterministic noise frame through the graph, its masks' ids checked against the metadata's classes
        (then every frame's are, in `results`)."""
        per_pixel = [task for task in self.tasks if "mask" in self.metadata.outputs.get(task.name, {})]
        if self.features is not None or not per_pixel:
            return
        raw = self.run(verification_inputs(self.metadata)[0])
        for task in per_pixel:
            name = self.metadata.outputs[task.name]["mask"]
            self._check_mask_ids(task, name, raw[name])

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
