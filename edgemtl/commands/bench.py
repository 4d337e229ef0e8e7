"""`edgemtl bench`: how fast exported models run here, per provider, batch and precision, end to end and
in the camera pipeline, with PyTorch eager beside them when torch and the checkpoint are at hand.

The runtime measures itself (`edgemtl.runtime.speed`, no PyTorch); this module adds what a device
without PyTorch cannot: a synthetic drive video for the pipeline, and the PyTorch eager row.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemtl.errors import DeviceError
from edgemtl.machine import describe_machine
from edgemtl.runtime.engine import Engine
from edgemtl.runtime.providers import EngineOptions
from edgemtl.runtime.sinks import VideoFileSink
from edgemtl.runtime.speed import (
    STAGES,
    BenchRow,
    PipelineComparison,
    StageSplit,
    bench_engine,
    bench_pipeline,
    bench_vector_engine,
    engine_only,
    make_row,
    markdown_table,
    split_stages,
)
from edgemtl.runtime.timing import time_calls

BENCH_DEVICES = ("cpu", "cuda", "tensorrt")  # onnxruntime's; bench_devices() adds OpenVINO's where installed
_DISTINCT_FRAMES = 60  # a synthetic drive of this many frames is looped to the pipeline's length


@dataclass
class BenchReport:
    machine: str
    rows: list[BenchRow] = field(default_factory=list)
    pipelines: list[tuple[str, str, PipelineComparison]] = field(default_factory=list)  # model, engine, result
    stages: list[tuple[str, StageSplit]] = field(default_factory=list)  # engine, split
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"Machine: {self.machine}", "", *markdown_table(self.rows)]
        if self.pipelines:
            lines += [
                "",
                "| model | engine | model alone (FPS) | pipeline on a file (FPS) | pipeline / model |",
                "|---|---|---|---|---|",
            ]
            for model, engine, result in self.pipelines:
                lines.append(
                    f"| {model} | {engine} | {result.model_alone_fps:.0f} | {result.pipeline_fps:.0f} "
                    f"| {result.ratio:.1%} |"
                )
        if self.stages:
            lines += ["", "A frame's time by stage (median ms, one thread, stage after stage):", ""]
            lines += [
                "| model | engine | frame | " + " | ".join(STAGES) + " | total |",
                "|---" * (len(STAGES) + 4) + "|",
            ]
            for engine, split in self.stages:
                values = " | ".join(f"{split.medians_ms[stage]:.2f}" for stage in STAGES)
                lines.append(f"| {split.model} | {engine} | {split.frame} | {values} | {split.total_ms:.2f} |")
        return [*lines, "", *self.notes] if self.notes else lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "rows": [row.to_dict() for row in self.rows],
            "pipelines": [{"model": m, "engine": e, **r.to_dict()} for m, e, r in self.pipelines],
            "stages": [{"engine": e, "model": s.model, "frame": s.frame, "ms": s.medians_ms} for e, s in self.stages],
            "notes": self.notes,
        }


def bench_devices() -> tuple[str, ...]:
    """Every target to bench by default: onnxruntime's, and each OpenVINO device and precision this machine
    has (`openvino` when the package is missing, so the table says it was skipped and why)."""
    from edgemtl.runtime.backends import BACKENDS

    return (*BENCH_DEVICES, *(BACKENDS["openvino"].devices() or ["openvino"]))


def drive_frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Frames a forward camera would see on a synthetic drive, at `size` (height, width)."""
    from edgemtl.data.synthetic import drive_sequence

    return [image for image, _, _ in drive_sequence(count, size, seed=0)]


def write_drive_video(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A synthetic drive of `frames` frames (a short one, looped) as a video file: a camera stand-in."""
    images = drive_frames(min(frames, _DISTINCT_FRAMES), size)
    with VideoFileSink(path, fps=30.0) as sink:
        for index in range(frames):
            sink.write(images[index % len(images)], str(index))
    return path


def bench_torch(
    checkpoint: Path, batches: tuple[int, ...], runs: int, threads: int | None, device: str = "cpu"
) -> list[BenchRow]:
    """PyTorch eager on the same whole computation the export holds, host to host like an Engine: uint8
    frames in from host memory, results back in host memory (on a GPU the copies and a sync are timed)."""
    import torch

    from edgemtl.deploy import ExportWrapper
    from edgemtl.deploy.vector import example_input
    from edgemtl.model import input_preprocess
    from edgemtl.train import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    preprocess = input_preprocess(loaded.mean, loaded.std, loaded.features)
    wrapper = ExportWrapper(loaded.build_model(), loaded.mean, loaded.std, preprocess=preprocess).eval().to(device)
    if threads:
        torch.set_num_threads(threads)

    def run(frames: torch.Tensor) -> list[torch.Tensor]:
        return [output.cpu() for output in wrapper(frames.to(device))]  # .cpu() waits for the GPU

    rows = []
    for batch in batches:
        if loaded.features is None:
            frames = torch.from_numpy(
                np.random.default_rng(0).integers(0, 256, (batch, *loaded.input_size, 3), dtype=np.uint8)
            )
        else:  # feature rows at the training means
            frames = example_input(loaded, batch, loaded.input_size)
        with torch.inference_mode():
            timings = time_calls(lambda frames=frames: run(frames), runs)
        row = make_row(
            f"PyTorch {torch.__version__} eager ({device})",
            checkpoint.name,
            "fp32",
            engine_only(loaded.input_size)
            if loaded.features is None
            else f"engine only, {loaded.features.count} features",
            batch,
            timings,
        )
        threads = str(torch.get_num_threads()) if device == "cpu" else "-"
        rows.append(dataclasses.replace(row, threads=threads, device=device))
    return rows


def _speedups(rows: list[BenchRow]) -> list[str]:
    """Each ONNX Runtime row against PyTorch eager on the same kind of device, batch by batch (p50)."""
    eager = {(r.device, r.measure, r.batch): r for r in rows if r.runner.startswith("PyTorch")}
    notes = []
    for row in rows:
        key = (row.device, row.measure, row.batch)
        if key in eager and not row.runner.startswith("PyTorch"):
            notes.append(
                f"{row.model} on {row.runner} (I/O binding {row.io_binding}, CUDA graphs {row.cuda_graph}) is "
                f"{eager[key].p50_ms / row.p50_ms:.2f}x as fast as PyTorch eager on {key[0]} ({row.measure}, "
                f"batch {row.batch}; p50 {row.p50_ms:.2f} ms vs {eager[key].p50_ms:.2f} ms)"
            )
    return notes


def torch_devices(rows: list[BenchRow]) -> list[str]:
    """Where PyTorch eager runs beside the engines: the CPU, and the GPU when an engine ran on one and
    this PyTorch build can use it too."""
    import torch

    devices = ["cpu"]
    if any(row.device == "cuda" for row in rows) and torch.cuda.is_available():
        devices.append("cuda")
    return devices


def describe_model(engine: Engine) -> str:
    """What a benched file holds, so a table row's file name says which model (a preset, a timm encoder)."""
    height, width = engine.input_size
    meta = engine.metadata
    return f"{meta.preset or 'model'}, {height}x{width} input, {meta.precision}, resize {meta.resize}"


def auto_choice(model: Path, options: EngineOptions) -> str:
    """What `--device auto` serves this file with on this machine, and why."""
    try:
        engine = Engine(model, "auto", options)
    except DeviceError as exc:
        return f"none ({exc})"
    return engine.choice or engine.providers[0]


def run_bench(
    models: list[Path],
    *,
    devices: tuple[str, ...] = BENCH_DEVICES,
    batches: tuple[int, ...] = (1,),
    runs: int = 200,
    options: EngineOptions | None = None,
    checkpoint: Path | None = None,
    video: Path | None = None,
    frame_size: tuple[int, int] = (480, 640),
    pipeline_frames: int = 500,
) -> BenchReport:
    """Every model on every device usable here; a device that is not is skipped with the reason in `notes`."""
    options = options or EngineOptions()
    report = BenchReport(describe_machine())
    frame = None
    with tempfile.TemporaryDirectory() as folder:
        for model in models:
            for device in devices:
                try:
                    engine = Engine(model, device, options)
                except DeviceError as exc:
                    report.notes.append(f"{model.name} on {device}: skipped ({exc})")
                    continue
                if engine.features is not None:  # feature rows: no frames, no camera pipeline
                    report.rows += bench_vector_engine(engine, batches=batches, runs=runs)
                    continue
                if not any(n.startswith(f"{model.name}: ") for n in report.notes):  # once per file
                    report.notes.append(f"{model.name}: {describe_model(engine)}")
                    report.notes.append(f"{model.name}: device auto here: {auto_choice(model, options)}")
                if frame is None:  # rendered once a model has opened, so a wrong path fails at once
                    (frame,) = drive_frames(1, frame_size)
                    if video is None and pipeline_frames:
                        video = write_drive_video(Path(folder) / "drive.mp4", pipeline_frames, frame_size)
                report.rows += bench_engine(engine, frame, batches=batches, runs=runs)
                if video is not None and pipeline_frames:
                    result = bench_pipeline(engine, video, frames=pipeline_frames)
                    report.pipelines.append((model.name, engine.describe(), result))
                    with VideoFileSink(Path(folder) / "stages.mp4", fps=30.0) as sink:
                        split = split_stages(engine, video, sink, frames=min(pipeline_frames, 200))
                    report.stages.append((engine.describe(), split))
    if checkpoint is None:
        report.notes.append(
            "PyTorch eager: skipped (an .onnx file holds no PyTorch weights; pass --checkpoint to add the row)"
        )
    else:
        try:
            for device in torch_devices(report.rows):
                report.rows += bench_torch(checkpoint, batches, runs, options.threads, device)
        except ImportError as exc:
            report.notes.append(f"PyTorch eager: skipped ({exc.name or 'torch'} is not installed)")
    report.notes += _speedups(report.rows)
    return report
