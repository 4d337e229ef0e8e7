"""Checkpoint → self-describing .onnx file (fp32, fp16 or int8), checked and verified before it
replaces anything."""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch

from edgemtl import __version__
from edgemtl.data import ArrayDataset
from edgemtl.deploy.precision import CALIBRATION_METHODS, PRECISIONS, convert_fp16, int8_settings_for, quantize_int8
from edgemtl.deploy.selection import check_settings, overrides, with_settings
from edgemtl.deploy.vector import check_vector_export, example_input, input_name, vector_metadata
from edgemtl.deploy.verify import (
    DEFAULT_MAX_DROP,
    ParityReport,
    SpeedAgainstFp32,
    VerificationReport,
    compare_metrics,
    speed_against_fp32,
    verify_parity,
)
from edgemtl.deploy.wrapper import ExportWrapper, OverlaySpec
from edgemtl.errors import ConfigError, ExportError, OutputError
from edgemtl.kinds import kind_of
from edgemtl.model import check_input_size, input_preprocess, model_stride
from edgemtl.model.frame import FrameSizedNet, frame_resize_method
from edgemtl.resize import DEFAULT_POLICY, check_policy
from edgemtl.runtime.metadata import DYNAMIC, INPUT_NAME, OVERLAY_OUTPUT, ModelMetadata
from edgemtl.train.checkpoint import Checkpoint

DEFAULT_OPSET = 18  # what the dynamo exporter targets natively; TensorRT 10 and ORT ≥ 1.14 read it
MIN_OPSET = 17  # the dynamo exporter's floor (per-channel QDQ needs only 13)
MAX_OPSET = 23  # the newest opset this onnx / onnxruntime pair both run
FRAME_SIDES = (16, 8192)  # a frame-sized export's frame height and width, in pixels: bounds, not a policy


@dataclass(frozen=True)
class ExportOptions:
    """Everything that shapes the exported file, validated before any work starts."""

    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    batch: int | None = None  # None: dynamic batch axis; N: fixed, for targets that want static shapes
    input_size: tuple[int, int] | None = None  # (height, width); None: the size the model was trained at
    raw_logits: bool = False
    calibration_method: str = "minmax"
    reduce_range: bool | None = None  # int8 7-bit weights; None: when the exporting CPU lacks VNNI
    int8_for: str = "onnxruntime"  # the CPU runtime the int8 file is quantized for (INT8_RUNTIMES)
    max_drop: float | None = None  # points a task may lose; None: DEFAULT_MAX_DROP[precision]
    allow_degraded: bool = False  # keep a file that lost more than max_drop, and say so
    resize: str | None = None  # the resize policy the file records; None: the one the model was trained with
    # (height, width) of the camera's frames, or "dynamic": the graph takes raw frames of that size, resizes
    # them to input_size inside, and returns masks at the frame's size. None: frames at input_size.
    frame_size: tuple[int, int] | str | None = None
    overlay: bool = False  # frame-sized only: one more output, the frame with the mask blended in
    overlay_alpha: float = 0.5
    # A detection task's final boxes (edgemtl.deploy.selection); None: the task's own, else the kind's default
    max_detections: int | None = None
    score_threshold: float | None = None
    iou_threshold: float | None = None

    @property
    def graph_size(self) -> tuple[int, int] | None:
        """The frames' (height, width) the graph is traced and fed at; None: any size (dynamic)."""
        if self.frame_size == DYNAMIC:
            return None
        return tuple(self.frame_size or self.input_size)  # type: ignore[return-value]

    def overlay_task(self, checkpoint: Checkpoint) -> str | None:
        """The per-pixel task the in-graph overlay blends: the first one."""
        if not self.overlay:
            return None
        return next(t.name for t in checkpoint.tasks if kind_of(t).per_pixel)

    def validate(self, checkpoint: Checkpoint) -> ExportOptions:
        """Return the options with defaults resolved, or raise ConfigError naming the bad one."""
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise ConfigError(
                f"opset {self.opset} cannot carry a {self.precision} export: expected {MIN_OPSET}..{MAX_OPSET}"
            )
        if self.batch is not None and self.batch < 1:
            raise ConfigError(f"batch {self.batch} is not usable: expected a positive size, or dynamic")
        if self.calibration_method not in CALIBRATION_METHODS:
            methods = ", ".join(CALIBRATION_METHODS)
            raise ConfigError(f"unknown calibration method {self.calibration_method!r}: expected one of {methods}")
        int8_settings_for(self.int8_for)
        if self.max_drop is not None and self.max_drop < 0:
            raise ConfigError(f"max drop {self.max_drop} is negative: expected points ≥ 0")
        size = tuple(self.input_size or checkpoint.input_size)
        if checkpoint.features is not None:  # vector input: rows of features, no frame size to choose
            check_vector_export(checkpoint, self)
        else:
            check_input_size(size, model_stride(checkpoint.preset, checkpoint.encoder))
            _check_frame_options(self, checkpoint)
        check_settings(overrides(self), checkpoint.tasks)
        max_drop = DEFAULT_MAX_DROP[self.precision] if self.max_drop is None else self.max_drop
        resize = check_policy(self.resize or checkpoint.resize)
        return replace(self, input_size=size, max_drop=max_drop, resize=resize)


def _check_frame_options(options: ExportOptions, checkpoint: Checkpoint) -> None:
    low, high = FRAME_SIDES
    frame = options.frame_size
    if frame not in (None, DYNAMIC) and not (
        isinstance(frame, tuple) and len(frame) == 2 and all(low <= side <= high for side in frame)
    ):
        raise ConfigError(f"frame size {frame} is not usable: expected HxW with sides {low}..{high}, or dynamic")
    policy = options.resize or checkpoint.resize
    if frame is not None and policy != DEFAULT_POLICY:
        raise ConfigError(
            f"a frame-sized export resizes inside its graph with the {DEFAULT_POLICY} policy only, and this one "
            f"is {policy}: export with --resize {DEFAULT_POLICY}, or without --frame-size to keep {policy}"
        )
    if not options.overlay:
        return
    if frame is None:
        raise ConfigError("--overlay-output blends the mask into the camera frame: give --frame-size HxW or dynamic")
    if not any(kind_of(t).per_pixel for t in checkpoint.tasks):
        names = ", ".join(f"{t.name} ({t.kind.value})" for t in checkpoint.tasks)
        raise ConfigError(f"--overlay-output needs a segmentation task to blend: this model has {names}")
    if not 0.0 <= options.overlay_alpha <= 1.0:
        raise ConfigError(f"overlay alpha {options.overlay_alpha} is not usable: expected 0..1")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata: ModelMetadata
    parity: ParityReport | None
    verification: VerificationReport | None
    size_bytes: int
    speed: SpeedAgainstFp32 | None = None  # fp16 / int8: the file's latency beside fp32's, on this machine


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter narrates every step and warns about unrelated libraries; keep it to errors."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def build_metadata(
    checkpoint: Checkpoint, wrapper: ExportWrapper, options: ExportOptions, calibration: dict
) -> ModelMetadata:
    metadata = ModelMetadata(
        tasks=checkpoint.tasks,
        input_size=options.input_size,
        mean=checkpoint.mean,
        std=checkpoint.std,
        outputs=wrapper.outputs,
        precision=options.precision,
        preset=model_description(checkpoint.preset, checkpoint.encoder),
        opset=options.opset,
        edgemtl_version=__version__,
        metrics=checkpoint.metrics,
        batch=options.batch,
        calibration=calibration,
        resize=options.resize,
        frame_size=options.frame_size,
        frame_resize=frame_resize_method(options.frame_size, options.input_size) if options.frame_size else "",
        overlay=(
            {"output": OVERLAY_OUTPUT, "task": options.overlay_task(checkpoint), "alpha": options.overlay_alpha}
            if options.overlay
            else {}
        ),
    )
    return replace(metadata, **vector_metadata(checkpoint))  # a vector model's input instead of frames


def model_description(preset: str, encoder: str) -> str:
    """What the metadata's `preset` says: the preset, or the timm encoder with the preset's heads."""
    return f"{encoder} + {preset} heads" if encoder else preset


def _trace_to_onnx(wrapper: ExportWrapper, options: ExportOptions, path: Path, checkpoint: Checkpoint) -> None:
    # A dynamic axis needs an example of at least 2, or the exporter specializes it to 1; a dynamic frame
    # is traced at a size unlike the network's, so no guard ties the two.
    name = input_name(checkpoint)
    axes = {} if options.batch else {0: torch.export.Dim("batch", min=1, max=4096)}
    size = options.graph_size or (options.input_size[0] * 2 + 8, options.input_size[1] * 2 + 24)
    example = example_input(checkpoint, options.batch or 2, size)  # frames, or feature rows
    if checkpoint.features is None and options.graph_size is None:
        low, high = FRAME_SIDES
        axes |= {1: torch.export.Dim("height", min=low, max=high), 2: torch.export.Dim("width", min=low, max=high)}
    dynamic = {"frames": axes} if axes else None
    try:
        with _quiet_exporter():
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                input_names=[name],
                output_names=wrapper.output_names,
                dynamic_shapes=dynamic,
                opset_version=options.opset,
                external_data=False,
                dynamo=True,
            )
    except Exception as exc:  # the exporter raises many internal types; report them as one
        written = _os_error(exc)
        if written is not None:  # a full disk or a write error is the disk's fault, not the exporter's
            raise written from None
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"PyTorch could not export the model to ONNX opset {options.opset}: {first_line}") from exc


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind an exporter's exception, if writing its file is what failed."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, bounded
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        if seen is None:
            return None
        seen = seen.__cause__ or seen.__context__
    return None


def _check_free_space(path: Path, model: torch.nn.Module) -> None:
    """Fail in a second, not after a minute of tracing: the export writes two files of about the weights' size
    (the fp32 graph and the candidate) beside `path` before one replaces it."""
    needed = 2 * sum(p.numel() * 4 for p in model.parameters())
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise OutputError(
            f"{os.strerror(errno.ENOSPC)} writing {path}: {free / 1e6:.2f} MB free there, the export needs about "
            f"{needed / 1e6:.2f} MB"
        )


def _check_output_path(path: Path, overwrite: bool) -> None:
    if path.suffix != ".onnx":
        raise OutputError(f"export path {path} does not end in .onnx: name the file model.onnx or similar")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists: choose another path or pass --overwrite")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")


def _check_frames(name: str, frames: np.ndarray | None, options: ExportOptions, whole_batches: bool) -> None:
    """Frames must fit the exported graph: its size, and (`whole_batches`) fill a fixed batch exactly.

    Calibration feeds the graph as it is, so it needs whole batches; verification pads its last batch.
    """
    if frames is None:
        return
    if len(frames) == 0:
        raise ConfigError(f"no {name} frames: expected at least one")
    if options.graph_size is not None and tuple(frames.shape[1:3]) != options.graph_size:
        height, width = options.graph_size
        raise ConfigError(
            f"{name} frames are {frames.shape[1]}x{frames.shape[2]}, the export is {height}x{width}: "
            "load them at the export size"
        )
    if whole_batches and options.batch and len(frames) % options.batch:
        raise ConfigError(f"{len(frames)} {name} frames do not fill batches of {options.batch}: give a multiple")


def _convert(
    fp32_file: Path, target: Path, options: ExportOptions, calibration_frames: np.ndarray | None
) -> dict[str, object]:
    """Write the requested precision of `fp32_file` to `target`; returns the calibration summary."""
    if options.precision == "fp16":
        onnx.save(convert_fp16(onnx.load(str(fp32_file))), str(target))
        return {}
    if options.precision == "int8":
        settings = int8_settings_for(options.int8_for)
        method, reduce_range = options.calibration_method, options.reduce_range
        return quantize_int8(fp32_file, target, calibration_frames, INPUT_NAME, method, reduce_range, settings)
    os.replace(fp32_file, target)
    return {}


def _finish(path: Path, metadata: ModelMetadata) -> None:
    """Stamp the metadata into the file and hold it to the full ONNX checker."""
    proto = onnx.load(str(path))
    taken = "uint8 NHWC BGR frames" if metadata.features is None else "float32 (N, F) raw feature rows"
    proto.doc_string = f"edgemtl multi-task model: {taken} in; see metadata_props (edgemtl.*)"
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata.to_props())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(
            f"exported {metadata.precision} graph fails onnx.checker: {str(exc).splitlines()[0]}"
        ) from None
    onnx.save(proto, str(path))


def export_onnx(
    checkpoint: Checkpoint,
    path: Path,
    options: ExportOptions = ExportOptions(),
    *,
    verify_data: ArrayDataset | None = None,
    calibration_frames: np.ndarray | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export at the requested precision, embed metadata, check, and (given data) verify.

    Verification on labelled `verify_data`: fp32 must match PyTorch output by output (parity),
    and every precision must keep each task's metric within `options.max_drop` points, else
    ExportError names the task and the loss (unless `allow_degraded`). Work happens in temporary
    files beside `path`; only a file that passed is moved into place, so a failed export never
    damages an existing model.
    """
    path = Path(path)
    options = options.validate(checkpoint)
    checkpoint = replace(checkpoint, tasks=with_settings(checkpoint.tasks, overrides(options)))
    _check_output_path(path, overwrite)
    if options.precision == "int8" and (calibration_frames is None or len(calibration_frames) == 0):
        raise ConfigError("int8 export needs calibration frames: give --calib-data (a folder or synthetic)")
    _check_frames("calibration", calibration_frames, options, whole_batches=True)
    if verify_data is not None:
        if checkpoint.features is None:
            _check_frames("verification", verify_data.images, options, whole_batches=False)
        verify_data.check_against(checkpoint.tasks)

    model = checkpoint.build_model()
    _check_free_space(path, model)
    preprocess = input_preprocess(checkpoint.mean, checkpoint.std, checkpoint.features)
    if options.frame_size is not None:  # the network takes the raw frame: it normalizes after its downscale
        method = frame_resize_method(options.frame_size, options.input_size)
        network = FrameSizedNet(model, options.input_size, preprocess, method)
        preprocess = torch.nn.Identity()
    else:
        network = model
    overlay = OverlaySpec(options.overlay_task(checkpoint), options.overlay_alpha) if options.overlay else None
    wrapper = ExportWrapper(network, checkpoint.mean, checkpoint.std, options.raw_logits, preprocess, overlay).eval()
    try:
        return _export_beside(path, checkpoint, network, preprocess, wrapper, options, verify_data, calibration_frames)
    except OSError as exc:  # named by the user's path: the temporary one beside it means nothing to them
        raise OutputError(f"{exc.strerror or exc} writing {path}") from None


def _export_beside(
    path: Path,
    checkpoint: Checkpoint,
    model: torch.nn.Module,  # what PyTorch scores: the network, with its frame-size resizes if the file has them
    preprocess: torch.nn.Module,  # what the network's input goes through first (none for a frame-sized one)
    wrapper: ExportWrapper,
    options: ExportOptions,
    verify_data: ArrayDataset | None,
    calibration_frames: np.ndarray | None,
) -> ExportResult:
    """The export's work, in a temporary folder beside `path`; only a file that passed replaces it."""
    parity = verification = None
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as folder:
        fp32_file, candidate = Path(folder) / "fp32.onnx", Path(folder) / "model.onnx"
        _trace_to_onnx(wrapper, options, fp32_file, checkpoint)
        calibration = _convert(fp32_file, candidate, options, calibration_frames)
        metadata = build_metadata(checkpoint, wrapper, options, calibration)
        _finish(candidate, metadata)
        if verify_data is not None:
            batch = options.batch or 32
            if options.precision == "fp32":
                parity = verify_parity(candidate, wrapper, verify_data.inputs, batch)
            verification = compare_metrics(
                candidate, model, preprocess, verify_data, options.precision, options.max_drop, batch
            )
            if verification.failures and not options.allow_degraded:
                lost = "; ".join(
                    f"{c.task} {c.metric} {c.pytorch:.4f} -> {c.exported:.4f} (-{c.drop:.2f} points)"
                    for c in verification.failures
                )
                raise ExportError(
                    f"{options.precision} export lost more than {options.max_drop:g} points: {lost}; "
                    "pass --allow-degraded to keep it, or raise --max-drop"
                )
        speed = None
        if options.precision != "fp32":  # does the smaller file pay on this machine? Say so when it does not
            inputs = example_input(checkpoint, options.batch or 1, options.graph_size or options.input_size).numpy()
            speed = speed_against_fp32(candidate, fp32_file, options.precision, inputs)
        os.replace(candidate, path)
    return ExportResult(path, metadata, parity, verification, path.stat().st_size, speed)
