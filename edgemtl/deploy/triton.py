"""A Triton Inference Server model repository for an exported file: serving many cameras without
edgemtl code on the server.

    <repository>/<model>/config.pbtxt
    <repository>/<model>/1/model.onnx

The config is derived from the file's own graph and metadata, so it cannot disagree with the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx

from edgemtl.runtime.metadata import ModelMetadata

MAX_BATCH = 32  # Triton's dynamic batcher groups requests from many cameras up to this size
QUEUE_DELAY_US = 500  # how long a request may wait for others to fill a batch
_TRITON_TYPES = {
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
}


def model_file(repository: Path, model_name: str) -> Path:
    return Path(repository) / model_name / "1" / "model.onnx"


def _tensor_entry(value: onnx.ValueInfoProto, skip_batch: bool) -> str:
    dims = [d.dim_value if d.dim_value else -1 for d in value.type.tensor_type.shape.dim]
    if skip_batch:
        dims = dims[1:]  # Triton adds the batch axis itself when max_batch_size > 0
    data_type = _TRITON_TYPES[value.type.tensor_type.elem_type]
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
    tasks = json.dumps([t.to_dict() for t in metadata.tasks]).replace('"', '\\"')
    blocks.append(f'parameters {{\n  key: "edgemtl.tasks"\n  value: {{ string_value: "{tasks}" }}\n}}')
    return "\n".join(blocks) + "\n"


def write_triton_config(repository: Path, model_name: str, metadata: ModelMetadata) -> Path:
    """Written beside the model and renamed into place: Triton never sees half a config."""
    config = Path(repository) / model_name / "config.pbtxt"
    partial = config.with_suffix(".pbtxt.tmp")
    partial.write_text(triton_config(model_file(repository, model_name), model_name, metadata))
    os.replace(partial, config)
    return config
