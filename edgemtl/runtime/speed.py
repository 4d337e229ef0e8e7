"""Latency and throughput of an Engine, end to end, and in the camera pipeline against the model alone.

NumPy, onnxruntime and OpenCV only, like the rest of the runtime, so a device without PyTorch can
measure itself. `edgemtl bench` adds the PyTorch eager row when torch and a checkpoint are at hand.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.runtime.engine import Engine
from edgemtl.runtime.overlay import Overlay
from edgemtl.runtime.pipeline import run_pipeline
from edgemtl.runtime.sinks import FrameSink, NullSink
from edgemtl.runtime.sources import open_source
from edgemtl.runtime.timing import time_calls


@dataclass(frozen=True)
class BenchRow:
    """One line of the table: what ran, where, how, and how fast."""

    model: str
    precision: str
    runner: str  # the execution provider, "OpenVINO CPU (bf16)", or "PyTorch <version> eager (<device>)"
    io_binding: str  # "on" / "off" / "-"
    cuda_graph: str
    threads: str  # intra-op threads, and whether idle ones spin
    measure: str  # what one timed call does
    batch: int
    p50_ms: float
    p99_ms: float
    fps: float  # frames per second: batch / mean call time
    device: str = "cpu"  # "cpu" or "cuda": rows are compared with PyTorch eager on the same kind of device

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = (
    "model",
    "precision",
    "runner",
    "I/O binding",
    "CUDA graphs",
    "threads",
    "measure",
    "batch",
    "p50 (ms)",
    "p99 (ms)",
    "throughput (FPS)",
)


def engine_only(input_size: tuple[int, int]) -> str:
    """The measure of a row timing the graph alone; rows with equal measures compare like for like."""
    return f"engine only, {input_size[0]}x{input_size[1]} input"


def make_row(
    engine_or_runner: Engine | str, model: str, precision: str, measure: str, batch: int, timings: np.ndarray
) -> BenchRow:
    """A row from raw timings; an Engine fills in its provider, I/O binding and CUDA-graph state."""
    if isinstance(engine_or_runner, Engine):
        engine = engine_or_runner
        runner = engine.providers[0]
        binding, graph = ("on" if engine.io_binding else "off"), ("on" if engine.options.cuda_graph else "off")
        threads = f"{engine.options.threads or 'default'}{'' if engine.options.spinning else ', no spinning'}"
        device = "cuda" if runner in ("CUDAExecutionProvider", "TensorrtExecutionProvider") else "cpu"
        if engine.target.backend != "onnxruntime" and engine.target.device != "CPU":
            device = engine.target.device.lower()
    else:
        runner, binding, graph, threads, device = engine_or_runner, "-", "-", "-", "cpu"
    p50, p99 = np.percentile(timings, [50, 99]) * 1e3
    fps = batch / timings.mean()
    return BenchRow(model, precision, runner, binding, graph, threads, measure, batch, p50, p99, fps, device)


def graph_input_size(engine: Engine, frame: np.ndarray) -> tuple[int, int]:
    """The (height, width) the graph is fed: the model's size, a frame-sized file's frame size, or for a
    dynamic one the camera frame's own."""
    height, width = engine.metadata.graph_size
    return (height, width) if height is not None and width is not None else frame.shape[:2]


def bench_engine(
    engine: Engine, frame: np.ndarray, *, batches: tuple[int, ...] = (1,), runs: int = 200
) -> list[BenchRow]:
    """Engine-only rows (uint8 frames at the model size in, graph outputs out) per batch size, and an
    end-to-end row at batch 1: `frame` (any camera size) → predict (resize, graph, mask back) → overlay."""
    name, precision = engine.path.name, engine.metadata.precision
    size = graph_input_size(engine, frame)
    rows = []
    for batch in (engine.metadata.batch,) if engine.metadata.batch else batches:  # a fixed-batch export: its own
        frames = np.random.default_rng(0).integers(0, 256, (batch, *size, 3), dtype=np.uint8)
        timings = time_calls(lambda frames=frames: engine.run(frames), runs)
        rows.append(make_row(engine, name, precision, engine_only(size), batch, timings))
    overlay = Overlay()
    timings = time_calls(lambda: overlay.render(frame, engine.predict(frame)), runs)
    measure = f"predict + overlay, {frame.shape[0]}x{frame.shape[1]} frame"
    rows.append(make_row(engine, name, precision, measure, 1, timings))
    return rows


def bench_vector_engine(engine: Engine, *, batches: tuple[int, ...] = (1,), runs: int = 200) -> list[BenchRow]:
    """A vector model's rows: the graph alone on float32 (N, F) rows per batch size (rows at the training
    means, in raw units), and `predict_features` at batch 1 (checks, graph, per-task results)."""
    name, precision, features = engine.path.name, engine.metadata.precision, engine.features
    means = np.asarray(features.mean, dtype=np.float32)
    rows = []
    for batch in (engine.metadata.batch,) if engine.metadata.batch else batches:
        values = np.ascontiguousarray(np.broadcast_to(means, (batch, features.count)))
        timings = time_calls(lambda values=values: engine.run(values), runs)
        rows.append(make_row(engine, name, precision, f"engine only, {features.count} features", batch, timings))
    timings = time_calls(lambda: engine.predict_features(means), runs)
    rows.append(make_row(engine, name, precision, "predict_features (checks + results)", 1, timings))
    return rows


@dataclass(frozen=True)
class PipelineComparison:
    """The pipeline's throughput on a file against the model alone on the same frames, decoded beforehand."""

    model_alone_fps: float  # Engine.predict in a loop over frames held in memory
    pipeline_fps: float  # decode → predict → overlay (+ statistics text) → no output, on the threads of run_pipeline
    frames: int
    repeats: int

    @property
    def ratio(self) -> float:
        return self.pipeline_fps / self.model_alone_fps if self.model_alone_fps else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": round(self.ratio, 4)}


def bench_pipeline(
    engine: Engine, video: Path, *, frames: int = 500, repeats: int = 3, held: int = 50
) -> PipelineComparison:
    """`frames` frames of `video` through each, measured `repeats` times, interleaved, keeping the best
    of each: on a shared machine the best run is the least disturbed, and interleaving exposes both to
    the same drift. The model alone cycles over the first `held` decoded frames (memory stays small)."""
    with open_source(video) as source:
        images = [frame.image for _, frame in zip(range(held), source)]
    engine.warmup()
    alone, piped = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(frames):
            engine.predict(images[index % len(images)])
        alone.append(frames / (time.perf_counter() - start))
        with open_source(video) as source:
            stats = run_pipeline(engine, source, NullSink(draw=True), max_frames=frames, report=None)
        piped.append(stats.fps)
    return PipelineComparison(max(alone), max(piped), min(frames, stats.frames), repeats)


STAGES = ("decode", "preprocess", "inference", "postprocess", "overlay", "write")


@dataclass(frozen=True)
class StageSplit:
    """Where one frame's time goes, stage by stage, run one after another on one thread (medians, ms).

    preprocess is the host resize (none for a frame-sized file); inference the graph; postprocess building
    the per-task results (and the host's mask resize); overlay the drawing; write the encoding to a video.
    """

    model: str
    frame: str  # "480x640": height x width, as the flags take it
    medians_ms: dict[str, float]

    @property
    def total_ms(self) -> float:
        return sum(self.medians_ms.values())


def split_stages(engine: Engine, video: Path, sink: FrameSink, *, frames: int = 200) -> StageSplit:
    """Time each stage of `frames` frames of `video` separately, in the pipeline's order."""
    overlay, timings = Overlay(), {stage: [] for stage in STAGES}
    height = width = 0
    engine.warmup()
    with open_source(video) as source:
        frames_in = iter(source)
        for _ in range(frames):
            start = time.perf_counter()
            frame = next(frames_in, None)
            if frame is None:
                break
            decoded = time.perf_counter()
            height, width = frame.image.shape[:2]
            prepared = engine.prepare(frame.image)
            prepared_at = time.perf_counter()
            raw = engine.run(prepared[np.newaxis])
            inferred = time.perf_counter()
            prediction = engine.results(raw, frame.image.shape[:2])
            built = time.perf_counter()
            image = overlay.render(frame.image, prediction)
            drawn = time.perf_counter()
            sink.write(image, frame.name)
            written = time.perf_counter()
            marks = (start, decoded, prepared_at, inferred, built, drawn, written)
            for stage, begin, end in zip(STAGES, marks, marks[1:]):
                timings[stage].append(end - begin)
    medians = {stage: float(np.median(times)) * 1e3 for stage, times in timings.items()}
    return StageSplit(engine.path.name, f"{height}x{width}", medians)


def markdown_table(rows: list[BenchRow]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        values = [*list(row.to_dict().values())[:8], f"{row.p50_ms:.2f}", f"{row.p99_ms:.2f}", f"{row.fps:.0f}"]
        lines.append("| " + " | ".join(str(v) for v in values) + " |")
    return lines
