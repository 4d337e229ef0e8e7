"""What a model file may make the runtime read, checked before ONNX Runtime opens it.

Model files come from other people. An ONNX tensor may keep its bytes in another file ("external data",
named by a path inside the model), and onnxruntime before 1.24 follows any such path, `../../etc/passwd`
or `/home/you/.ssh/id_rsa` included. So the file's protobuf is walked here (only its structure: tensor
bytes are skipped, never copied) and every external-data path must stay inside the model's folder.
Standard library only: the runtime has no `onnx` package.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from edgemtl.errors import ModelFileError

# Which fields of which ONNX message hold messages to look into (onnx.proto3 field numbers).
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION = range(7)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},  # ModelProto.graph, .functions
    _FUNCTION: {7: _NODE},  # FunctionProto.node
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},  # GraphProto.node, .initializer, .sparse_initializer
    _NODE: {5: _ATTRIBUTE},  # NodeProto.attribute
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},  # t, g, tensors, ...
    _SPARSE: {1: _TENSOR, 2: _TENSOR},  # SparseTensorProto.values, .indices
    _TENSOR: {},
}
_EXTERNAL_DATA, _ENTRY_KEY, _ENTRY_VALUE = 13, 1, 2  # TensorProto.external_data: StringStringEntryProto list
_MAX_NESTING = 64  # subgraphs inside subgraphs: far deeper than any real model, and bounds the recursion


class _Damaged(Exception):
    """The bytes are not a protobuf message: onnxruntime will refuse the file and say so."""


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Damaged
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """(field number, bytes of a length-delimited field or None) for each field of one message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        wire = key & 7
        value = None
        if wire == 0:
            _, position = _varint(data, position)
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        elif wire == 2:
            length, position = _varint(data, position)
            value = data[position : position + length]
            position += length
        else:  # groups (3, 4) are not in ONNX; anything else is not protobuf
            raise _Damaged
        if position > len(data):
            raise _Damaged
        yield key >> 3, value


def _locations(data: memoryview, message: int, depth: int) -> Iterator[str]:
    if depth > _MAX_NESTING:
        raise _Damaged
    children = _CHILDREN[message]
    for number, value in _fields(data):
        if value is None:
            continue
        if message == _TENSOR and number == _EXTERNAL_DATA:
            entry = dict(_fields(value))
            key, text = entry.get(_ENTRY_KEY), entry.get(_ENTRY_VALUE)
            if key is not None and bytes(key) == b"location" and text is not None:
                yield bytes(text).decode("utf-8", "replace")
        elif number in children:
            yield from _locations(value, children[number], depth + 1)


def external_data_paths(model: bytes) -> list[str]:
    """Every external-data location a serialized ONNX model names; [] for bytes that are not protobuf."""
    try:
        return list(_locations(memoryview(model), _MODEL, 0))
    except _Damaged:
        return []


def check_external_data(path: Path) -> None:
    """Refuse a model whose tensors name data outside its own folder (absolute, `..`, or a link out of it)."""
    folder = Path(os.path.realpath(path.parent))
    for location in external_data_paths(path.read_bytes()):
        target = Path(location)
        inside = not target.is_absolute() and Path(os.path.realpath(folder / target)).is_relative_to(folder)
        if not inside:
            raise ModelFileError(
                f"{path} refers to external data {location!r} outside its folder {folder}: refused, a model "
                "file may only read data beside it"
            )
