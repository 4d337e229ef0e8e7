"""A Triton Inference Server model repository for an exported file: serving many cameras without
edgemtl code on the server.

    <repository>/<model>/config.pbtxt
    <repository>/<model>/1/model.onnx

The config is derived from the file's own graph and metadata, so it cannot disagree with the model: every
graph output is declared with its type and shape (a detection task's boxes (K, 4), scores (K), classes (K)
and count, K its --max-detections), so Triton hands a client each of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx

from edgemtl.errors import ExportError
from edgemtl.runtime.metadata import ModelMetadata

MAX_BATCH = 32  # Triton's dynamic batcher groups requests from many cameras up to this size
QUEUE_DELAY_US = 500  # how long a request may wait for others to fill a batch
#: ONNX element types → Triton's (model_config.proto DataType): every one both know, not only those edgemtl
#: writes today (uint8 frames and masks, int64 labels, classes and counts, float32 / float16 values), so a
#: graph that returns an int32 count or boolean flags is served, not refused.
_TRITON_TYPES = {
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.UINT16: "TYPE_UINT16",
    onnx.TensorProto.UINT32: "TYPE_UINT32",
    onnx.TensorProto.UINT64: "TYPE_UINT64",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
}


def model_file(repository: Path, model_name: str) -> Path:
    return Path(repository) / model_name / "1" / "model.onnx"


def _tensor_entry(value: onnx.ValueInfoProto, skip_batch: bool) -> str:
    dims = [d.dim_value if d.dim_value else -1 for d in value.type.tensor_type.shape.dim]
    if skip_batch and (not dims or dims[0] != -1):
        raise ExportError(
            f"graph tensor {value.name!r} has shape {dims}: Triton's dynamic batching needs the open batch axis "
            "first (or export with --batch N)"
        )
    if skip_batch:
        dims = dims[1:]  # Triton adds the batch axis itself when max_batch_size > 0
    elem_type = value.type.tensor_type.elem_type
    if elem_type not in _TRITON_TYPES:
        raise ExportError(
            f"graph tensor {value.name!r} has ONNX type {onnx.TensorProto.DataType.Name(elem_type)}, which Triton's "
            f"ONNX Runtime backend has no type for: expected one of "
            f"{', '.join(onnx.TensorProto.DataType.Name(t) for t in _TRITON_TYPES)}"
        )
    data_type = _TRITON_TYPES[elem_type]
    # Triton needs non-empty dims: a per-frame scalar (a label) is declared [1] and reshaped to [].
    reshape = "\n    reshape: { shape: [] }" if not dims else ""
    return f'  {{\n    name: "{value.name}"\n    data_type: {data_type}\n    dims: {dims or [1]}{reshape}\n  }}'


def _tensor_list(kind: str, values: list[onnx.ValueInfoProto], skip_batch: bool) -> str:
    return f"{kind} [\n" + ",\n".join(_tensor_entry(v, skip_batch) for v in values) + "\n]"


def triton_config(path: Path, model_name: str, metadata: ModelMetadata) -> str:
    """config.pbtxt text for the ONNX Runtime backend, with dynamic batching when the batch is dynamic."""
    graph = onnx.load(str(path), load_external_data=False).graph
    dynamic = metadata.batch is None
    blocks = [
        f'name: "{model_name}"',
        'backend: "onnxruntime"',
        f"max_batch_size: {MAX_BATCH if dynamic else 0}",
        _tensor_list("input", list(graph.input), dynamic),
        _tensor_list("output", list(graph.output), dynamic),
    ]
    if dynamic:
        blocks.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}")
    tasks = json.dumps([t.to_dict() for t in metadata.tasks])
    blocks.append(f'parameters {{\n  key: "edgemtl.tasks"\n  value: {{ string_value: "{_quoted(tasks)}" }}\n}}')
    return "\n".join(blocks) + "\n"


def _quoted(text: str) -> str:
    """`text` as the inside of a protobuf text-format string: backslashes first, then quotes (json.dumps has
    already escaped a class name's own quotes and backslashes, which must reach Triton as they are)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def write_triton_config(repository: Path, model_name: str, metadata: ModelMetadata) -> Path:
    """Written beside the model and renamed into place: Triton never sees half a config."""
    config = Path(repository) / model_name / "config.pbtxt"
    partial = config.with_suffix(".pbtxt.tmp")
    partial.write_text(triton_config(model_file(repository, model_name), model_name, metadata))
    os.replace(partial, config)
    return config
