"""`edgemtl export` as a call: a checkpoint and export options in, a verified .onnx file (or a Triton
model repository) out."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemtl.data import ArrayDataset, load_frames, open_dataset
from edgemtl.data.splits import SYNTHETIC, describe_record, has_splits, open_recorded
from edgemtl.data.synthetic import labels_all
from edgemtl.data.table import TableColumns
from edgemtl.deploy import ExportOptions, ExportResult, export_onnx
from edgemtl.deploy.triton import model_file, write_triton_config
from edgemtl.errors import ConfigError
from edgemtl.train import Checkpoint, load_checkpoint

TARGETS = ("onnx", "triton")
#: A dynamic frame-sized file is verified (and calibrated) on frames of a VGA camera's size.
DYNAMIC_FRAME_CHECK_SIZE = (480, 640)


@dataclass(frozen=True)
class ExportRequest:
    """What to export, where to, and on which frames to verify and calibrate it."""

    checkpoint: Path
    options: ExportOptions = field(default_factory=ExportOptions)
    output: Path | None = None  # the .onnx file or the Triton repository; default: beside the checkpoint
    target: str = "onnx"  # onnx | triton
    verify: bool = True
    # None: the frames that validated the checkpoint (recorded in it); else 'synthetic' (validation scenes)
    # or a dataset folder / manifest (its val split, where its split column has one)
    verify_data: str | None = None
    verify_frames: int = 256
    # int8: None: the run's own training frames (its recorded data.train); else 'synthetic' (the first
    # training scenes) or a folder of images
    calib_data: str | None = None
    calib_size: int = 128
    overwrite: bool = False
    allow_outside_paths: bool = False  # --verify-data's listing may name files outside its folder


@dataclass(frozen=True)
class ExportReport:
    result: ExportResult
    triton_config: Path | None  # config.pbtxt, for a Triton repository
    verified_on: str = "the validation set"  # which frames the verification scored, named in its table

    def lines(self) -> list[str]:
        result, options = self.result, self.result.metadata
        lines = [f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {options.precision}, opset {options.opset})"]
        if self.triton_config is not None:
            lines.append(f"wrote {self.triton_config}")
        if result.parity:
            lines.append(f"parity with PyTorch on {result.parity.frames} frames:")
            lines += [f"  {check}" for check in result.parity.checks]
        if result.verification:
            lines += result.verification.lines(self.verified_on)
        if result.speed:
            lines.append(result.speed.line())
        return lines


def _check_data_sources(checkpoint: Checkpoint, request: ExportRequest) -> None:
    """A model of other tasks was trained on other frames: synthetic scenes cannot verify or calibrate it."""
    if labels_all(checkpoint.tasks):
        return
    if request.verify and (
        request.verify_data == SYNTHETIC or (request.verify_data, checkpoint.validation) == (None, None)
    ):
        raise ConfigError(
            "this model's tasks are not ones synthetic scenes label and its checkpoint records no validation "
            "frames: pass --verify-data FOLDER (a dataset folder or manifest) or --no-verify"
        )
    if request.options.precision == "int8" and _calibration_source(checkpoint, request) == SYNTHETIC:
        raise ConfigError(
            "this model's tasks are not ones synthetic scenes label and its checkpoint records no training data: "
            "pass --calib-data FOLDER for int8"
        )


def verification_data(
    checkpoint: Checkpoint, request: ExportRequest, size: tuple[int, int]
) -> tuple[ArrayDataset, str]:
    """The labelled frames to verify on and their name in the report: by default the run's own validation
    frames, so an export is checked on what chose its checkpoint, never on frames it trained on."""
    tasks, frames, outside = checkpoint.tasks, request.verify_frames, request.allow_outside_paths
    if request.verify_data is None and checkpoint.validation is not None:
        record, features = checkpoint.validation, checkpoint.features  # features: a vector model's table rows
        data = open_recorded(record, size=size, tasks=tasks, limit=frames, allow_outside=outside, features=features)
        return data, describe_record(checkpoint.validation)
    if checkpoint.features is not None:  # rows of another table: read with the model's features and means
        columns = TableColumns(checkpoint.features.names, checkpoint.features.missing)
        table = open_dataset(request.verify_data, "val", size=None, tasks=tasks, columns=columns)
        return table.filled(checkpoint.features).subset(slice(0, frames)), f"{request.verify_data} (val split)"
    spec = request.verify_data or SYNTHETIC
    data = open_dataset(spec, "val", size=size, tasks=tasks, count=frames, allow_outside=outside)
    name = (
        "synthetic validation scenes"
        if spec == SYNTHETIC
        else f"{spec} ({'val split' if has_splits(data) else 'all frames'})"
    )
    return data.subset(slice(0, frames)), name  # a fixed batch is padded when scored


def _output_path(request: ExportRequest) -> Path:
    if request.target == "triton":
        return model_file(request.output or request.checkpoint.parent / "triton", request.checkpoint.stem)
    suffix = ".onnx" if request.options.precision == "fp32" else f".{request.options.precision}.onnx"
    return request.output or request.checkpoint.with_suffix(suffix)


def _calibration_source(checkpoint: Checkpoint, request: ExportRequest) -> str:
    """The data spec int8 calibrates on: the one asked for, else the data the run trained on."""
    if request.calib_data is not None:
        return request.calib_data
    return str((checkpoint.config.get("data") or {}).get("train", SYNTHETIC))


def _calibration_frames(
    checkpoint: Checkpoint, request: ExportRequest, size: tuple[int, int], whole_batches: int
) -> np.ndarray:
    """int8 calibration frames at the export's size, a whole number of the export's batches.

    By default the run's own training frames, loaded as training loaded them (resized to the model's
    input), so activation ranges are measured on what the model saw; a folder given explicitly must
    already be at the export's size (`load_frames`)."""
    source = _calibration_source(checkpoint, request)
    if source == SYNTHETIC:  # the first training scenes: make_dataset(n, seed=0) is a prefix
        frames = open_dataset(SYNTHETIC, "train", size=size, count=request.calib_size).images
    elif request.calib_data is None:
        data = open_dataset(
            source, "train", size=size, tasks=checkpoint.tasks, allow_outside=request.allow_outside_paths
        )
        frames = data.images[: request.calib_size]
    else:
        frames = load_frames(Path(source), size, request.calib_size)
    return frames[: len(frames) // whole_batches * whole_batches]


def run_export(request: ExportRequest) -> ExportReport:
    """Check every option before minutes of data loading, export, verify, and leave nothing behind on failure."""
    if request.target not in TARGETS:
        raise ConfigError(f"unknown export format {request.target!r}: expected one of {', '.join(TARGETS)}")
    checkpoint = load_checkpoint(request.checkpoint)
    options = request.options.validate(checkpoint)
    _check_data_sources(checkpoint, request)
    output = _output_path(request)
    frame_size = options.graph_size or DYNAMIC_FRAME_CHECK_SIZE  # the frames the file is fed
    verify_data, verify_name = verification_data(checkpoint, request, frame_size) if request.verify else (None, "")
    calibration = (
        _calibration_frames(checkpoint, request, frame_size, options.batch or 1)
        if options.precision == "int8"
        else None
    )
    created = next((p for p in reversed(output.parents) if not p.exists()), None)  # Triton's model folders
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = export_onnx(
            checkpoint,
            output,
            options,
            verify_data=verify_data,
            calibration_frames=calibration,
            overwrite=request.overwrite,
        )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)  # leave no empty repository behind a failed export
        raise
    triton_config = None
    if request.target == "triton":
        repository = output.parent.parent.parent
        triton_config = write_triton_config(repository, request.checkpoint.stem, result.metadata)
    return ExportReport(result, triton_config, verify_name)
