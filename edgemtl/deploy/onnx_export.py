"""Checkpoint → self-describing .onnx file, checked and verified before it replaces anything."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from edgemtl import __version__
from edgemtl.deploy.verify import ParityReport, verify_parity
from edgemtl.deploy.wrapper import ExportWrapper
from edgemtl.errors import ExportError, OutputError
from edgemtl.runtime.metadata import INPUT_NAME, ModelMetadata
from edgemtl.train.checkpoint import Checkpoint

DEFAULT_OPSET = 18  # what the dynamo exporter targets natively; TensorRT 10 and ORT ≥ 1.14 read it


@dataclass(frozen=True)
class ExportResult:
    path: Path
    metadata: ModelMetadata
    parity: ParityReport | None
    size_bytes: int


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


def build_metadata(checkpoint: Checkpoint, wrapper: ExportWrapper, opset: int) -> ModelMetadata:
    return ModelMetadata(
        tasks=checkpoint.tasks,
        input_size=checkpoint.input_size,
        mean=checkpoint.mean,
        std=checkpoint.std,
        outputs=wrapper.outputs,
        precision="fp32",
        preset=checkpoint.preset,
        opset=opset,
        edgemtl_version=__version__,
        metrics=checkpoint.metrics,
    )


def _trace_to_onnx(wrapper: ExportWrapper, input_size: tuple[int, int], opset: int, path: Path) -> None:
    example = torch.zeros(2, *input_size, 3, dtype=torch.uint8)  # batch 2 so the batch axis stays symbolic
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with _quiet_exporter():
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                input_names=[INPUT_NAME],
                output_names=wrapper.output_names,
                dynamic_shapes={"frames": {0: batch}},
                opset_version=opset,
                external_data=False,
                dynamo=True,
            )
    except Exception as exc:  # the exporter raises many internal types; report them as one
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"PyTorch could not export the model to ONNX opset {opset}: {first_line}") from exc


def export_onnx(
    checkpoint: Checkpoint,
    path: Path,
    *,
    verify_frames: np.ndarray | None = None,
    raw_logits: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> ExportResult:
    """Export, embed metadata, run onnx.checker and (given frames) the PyTorch parity check.

    Work happens in a temporary file beside `path`; only a file that passed every check is moved
    into place, so a failed export never damages an existing model.
    """
    path = Path(path)
    if path.suffix != ".onnx":
        raise OutputError(f"export path {path} does not end in .onnx: name the file model.onnx or similar")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists: choose another path or pass --overwrite")
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")

    model = checkpoint.build_model()
    wrapper = ExportWrapper(model, checkpoint.mean, checkpoint.std, raw_logits).eval()
    metadata = build_metadata(checkpoint, wrapper, opset)
    handle, temporary_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".onnx", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        _trace_to_onnx(wrapper, checkpoint.input_size, opset, temporary)
        proto = onnx.load(str(temporary))
        proto.doc_string = "edgemtl multi-task model: uint8 NHWC BGR frames in; see metadata_props (edgemtl.*)"
        onnx.helper.set_model_props(proto, metadata.to_props())
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from None
        onnx.save(proto, str(temporary))
        parity = verify_parity(temporary, wrapper, verify_frames) if verify_frames is not None else None
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return ExportResult(path, metadata, parity, path.stat().st_size)
