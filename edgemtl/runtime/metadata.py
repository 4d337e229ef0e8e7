"""What an exported file says about itself, stored in the ONNX model's metadata_props.

Flat keys with JSON values, one fact per key, so any ONNX consumer (C++ `GetCustomMetadataMap`,
Triton, Netron) can read a single fact without an edgemtl parser. The exporter writes this
structure and the Engine reads it; nothing about the model is hard-coded on either side.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemtl import jsonfile
from edgemtl.errors import ConfigError, ForeignModelError, ModelFileError
from edgemtl.features import VECTOR, FeatureSpec
from edgemtl.kinds import kind_of
from edgemtl.resize import DEFAULT_POLICY, PAD_VALUE, check_policy
from edgemtl.runtime.features import check_vector_input, describe_vector_input, parse_vector_input, vector_props
from edgemtl.tasks import TaskSpec, tasks_from_json, tasks_to_json

FORMAT_NAME = "edgemtl-onnx"
FORMAT_VERSION = 1
PREFIX = "edgemtl."
INPUT_NAME = "frames"
OVERLAY_OUTPUT = "overlay"  # a frame-sized file's optional uint8 (N, H, W, 3) frame with the mask blended in
DYNAMIC = "dynamic"  # a batch or frame size the graph takes at any value
#: Bounds on what a metadata value may be: edgemtl writes a few kB; a file from elsewhere may hold anything.
MAX_VALUE_CHARS = 1 << 20
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
#: ONNX tensor types → NumPy dtype names, to compare a graph with what a kind outputs.
GRAPH_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}


def output_name(task: TaskSpec, output_field: str) -> str:
    return f"{task.name}_{output_field}"


def task_output_fields(task: TaskSpec, raw_logits: bool) -> list[str]:
    """The graph's outputs for a task (its kind's `outputs`), and its raw logits if asked for and it has any."""
    kind = kind_of(task)
    fields = list(kind.outputs)
    if raw_logits and kind.categorical:  # regression's outputs are its raw values already
        fields.append("logits")
    return fields


@dataclass(frozen=True)
class ModelMetadata:
    tasks: tuple[TaskSpec, ...]
    input_size: tuple[int, int]  # (height, width) the graph expects
    mean: tuple[float, ...]  # on the 0..255 scale, in the frame's channel order
    std: tuple[float, ...]
    outputs: dict[str, dict[str, str]]  # task name → field → ONNX output name
    precision: str = "fp32"
    preset: str = ""
    opset: int = 0
    edgemtl_version: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)  # validation metrics at training time
    batch: int | None = None  # fixed batch size, or None when the batch axis is dynamic
    calibration: dict[str, Any] = field(default_factory=dict)  # int8 only: method, frames, format
    extra: dict[str, Any] = field(default_factory=dict)  # anything else the exporter records
    input_name: str = INPUT_NAME
    layout: str = "NHWC"
    color_order: str = "BGR"
    input_dtype: str = "uint8"
    # Vector input (edgemtl.features): the features in input order and the statistics the graph
    # standardizes with; input_size is then (1, F). None: the input is camera frames.
    features: FeatureSpec | None = None
    resize: str = DEFAULT_POLICY  # how a frame of another size becomes the input (edgemtl.resize)
    # A frame-sized file takes camera frames of this (height, width), or of any size (DYNAMIC), and resizes
    # them to `input_size` inside the graph (`frame_resize` names how); its masks come out at the frame's size.
    # None: the graph takes frames at `input_size`, and the caller resizes.
    frame_size: tuple[int, int] | str | None = None
    frame_resize: str = ""
    overlay: dict[str, Any] = field(default_factory=dict)  # {"output", "task", "alpha"} when the graph blends

    @property
    def graph_size(self) -> tuple[int | None, int | None]:
        """The (height, width) the graph's input takes; None where any size goes."""
        if self.frame_size == DYNAMIC:
            return (None, None)
        return tuple(self.frame_size or self.input_size)  # type: ignore[return-value]

    def to_props(self) -> dict[str, str]:
        height, width = self.graph_size
        model_input = {
            "name": self.input_name,
            "height": DYNAMIC if height is None else height,
            "width": DYNAMIC if width is None else width,
            "layout": self.layout,
            "color_order": self.color_order,
            "dtype": self.input_dtype,
            "batch": self.batch or DYNAMIC,
            "resize": self.resize,
            "pad_value": PAD_VALUE,
        }
        frame = {}
        if self.frame_size is not None:  # what a consumer needs to know the graph resizes for it
            network = {"height": self.input_size[0], "width": self.input_size[1], "method": self.frame_resize}
            frame["network"] = json.dumps(network)
        if self.overlay:
            frame["overlay"] = json.dumps(self.overlay)
        props = {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "version": self.edgemtl_version,
            "tasks": tasks_to_json(self.tasks),
            "input": json.dumps(model_input),
            **frame,
            "normalization": json.dumps({"mean": list(self.mean), "std": list(self.std), "scale": "0-255"}),
            "outputs": json.dumps(self.outputs),
            "precision": self.precision,
            "preset": self.preset,
            "opset": str(self.opset),
            "metrics": jsonfile.dumps(self.metrics),  # a class no validation frame held: null, not bare NaN
            "calibration": json.dumps(self.calibration),
            "extra": json.dumps(self.extra),
        }
        if self.features is not None:
            model_input, normalization = vector_props(self.features, self.input_name, self.batch)
            props |= {"input": json.dumps(model_input), "normalization": json.dumps(normalization)}
        return {PREFIX + key: value for key, value in props.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str) -> ModelMetadata:
        """Parse metadata_props; `source` names the file in errors. Values are bounded (`bounded_json`)."""
        if props.get(PREFIX + "format") != FORMAT_NAME:
            raise ForeignModelError(
                f"{source} is an ONNX model but not an edgemtl export (no {PREFIX}format metadata): "
                "export it with `edgemtl export`, or run it with onnxruntime directly"
            )
        version = props.get(PREFIX + "format_version")
        if version != str(FORMAT_VERSION):
            raise ModelFileError(
                f"{source} has edgemtl format version {str(version)[:20]}: this edgemtl reads version "
                f"{FORMAT_VERSION}; re-export it with this version"
            )

        def value(key: str, default: str | None = None) -> Any:
            text = props.get(PREFIX + key, default)
            if text is None:
                raise ModelFileError(f"{source} has damaged edgemtl metadata: {PREFIX}{key} is missing")
            return bounded_json(text, f"{source} metadata {PREFIX}{key}")

        model_input, normalization = value("input"), value("normalization")
        if isinstance(model_input, dict) and model_input.get("kind") == VECTOR:
            features = parse_vector_input(model_input, normalization, source)
            model_input = {**model_input, "height": 1, "width": features.count, "color_order": ""}
            normalization = {"mean": features.mean, "std": features.std}
        else:
            features = None
        network = value("network", "null")  # present in frame-sized files only
        try:
            tasks = tasks_from_json(_checked_text(props, "tasks", source))
        except ConfigError as exc:
            raise ModelFileError(f"{source} metadata {PREFIX}tasks: {exc}") from None
        try:
            return cls(
                tasks=tasks,
                input_size=_size(network or model_input),
                frame_size=None if network is None else _frame_size(model_input),
                frame_resize="" if network is None else str(network["method"])[:40],
                overlay=value("overlay", "{}"),
                mean=tuple(float(m) for m in normalization["mean"]),
                std=tuple(float(s) for s in normalization["std"]),
                outputs=_output_names(value("outputs"), source),
                precision=_checked_text(props, "precision", source, "fp32"),
                preset=_checked_text(props, "preset", source, ""),
                opset=int(_checked_text(props, "opset", source, "0")),
                edgemtl_version=_checked_text(props, "version", source, ""),
                metrics=value("metrics", "{}"),
                batch=None if model_input.get("batch", "dynamic") == "dynamic" else int(model_input["batch"]),
                calibration=value("calibration", "{}"),
                extra=value("extra", "{}"),
                input_name=str(model_input["name"]),
                layout=str(model_input["layout"]),
                color_order=str(model_input["color_order"]),
                input_dtype=str(model_input["dtype"]),
                features=features,
                resize=_resize_policy(model_input, source),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"{source} has damaged edgemtl metadata ({exc!r}): re-export the model") from None

    def check_graph(self, inputs: Sequence[Any], outputs: Sequence[Any], source: str) -> None:
        """Refuse a file whose metadata and graph disagree: a half-trusted file reports wrong classes.

        `inputs` / `outputs`: the graph's, with `.name`, `.type` ("tensor(uint8)") and `.shape` (onnxruntime's
        NodeArg). The one input must be what the metadata says (name, uint8, NHWC, size, batch); every output
        the metadata names must exist with its kind's dtype and axes (`KindDef.output_axes`), class counts
        included. ModelFileError names the file, the field and both values.
        """
        _check_input(self, inputs, source)
        graph = {o.name: o for o in outputs}
        for task in self.tasks:
            kind = kind_of(task)
            fields = self.outputs.get(task.name, {})
            missing = [f for f in kind.outputs if f not in fields]
            if missing:
                raise ModelFileError(
                    f"{source}: metadata outputs.{task.name} names no output for {', '.join(missing)}: "
                    f"a {kind.value} task has {', '.join(kind.outputs)}"
                )
            for output_field, name in fields.items():
                where = f"{source}: metadata outputs.{task.name}.{output_field} is {name!r}"
                if name not in graph:
                    raise ModelFileError(f"{where}, which the graph lacks (its outputs: {', '.join(graph)})")
                try:
                    dtype, axes = kind.output_axes(task, output_field)
                except KeyError:
                    raise ModelFileError(
                        f"{where}, but a {kind.value} task has no output {output_field!r} "
                        f"(expected {', '.join(kind.outputs)})"
                    ) from None
                _check_output(f"{where}, a graph output of", graph[name], dtype, axes, task)
        if self.overlay:
            _check_overlay(self, graph, source)

    def describe(self) -> list[str]:
        """Human-readable lines, for `edgemtl info` and logs."""
        graph_height, graph_width = (d or axis for d, axis in zip(self.graph_size, "HW"))
        lines = [
            f"edgemtl export (format {FORMAT_VERSION}, edgemtl {self.edgemtl_version}), preset {self.preset}, "
            f"precision {self.precision}, opset {self.opset}",
            f"input  {self.input_name}: {self.input_dtype} {self.layout} {self.color_order}, "
            f"batch {self.batch or 'dynamic'} x {graph_height} x {graph_width} x 3, resize {self.resize}; "
            f"normalization mean {list(self.mean)} std {list(self.std)}",
        ]
        if self.features is not None:
            lines[1:] = describe_vector_input(self.features, self.input_name, self.batch)
        if self.frame_size is not None:
            height, width = self.input_size
            frame = "any size" if self.frame_size == DYNAMIC else f"{graph_height}x{graph_width}"
            lines.append(
                f"frame  camera frames of {frame} in, resized inside the graph ({self.frame_resize}, "
                f"{self.resize}) to the network's {height}x{width}; masks come out at the frame's size"
            )
        if self.overlay:
            lines.append(
                f"frame  output {self.overlay['output']}: the frame with {self.overlay['task']} blended in "
                f"(alpha {self.overlay['alpha']})"
            )
        if self.calibration:
            lines.append("int8   calibration: " + ", ".join(f"{k} {v}" for k, v in self.calibration.items()))
        for task in self.tasks:
            outputs = ", ".join(self.outputs.get(task.name, {}).values())
            classes = ", ".join(task.classes) if task.classes else "(one value)"
            lines.append(f"task   {task.name} ({task.kind.value}): {classes} -> {outputs}")
            lines += [f"       {line}" for line in kind_of(task).spec_lines(task)]  # e.g. the flags' thresholds
            if task.name in self.metrics:
                # null: nothing to score (a NaN, written so the text stays JSON), shown as the NaN it was
                metrics = {k: math.nan if v is None else v for k, v in self.metrics[task.name].items()}
                scores = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
                lines.append(f"       validation: {scores}")
        return lines


def bounded_json(text: str, what: str) -> Any:
    """JSON parsed only within bounds (size and nesting): a crafted file cannot exhaust memory or the stack.

    `what` names the file and key in the one-line ModelFileError.
    """
    if len(text) > MAX_VALUE_CHARS:
        raise ModelFileError(f"{what} is {len(text)} characters: refused above {MAX_VALUE_CHARS} (edgemtl writes kB)")
    codes = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8", "replace"), np.uint8)
    opened = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - np.isin(codes, (ord("]"), ord("}")))
    depth = int(np.cumsum(opened).max(initial=0))
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(f"{what} nests {depth} levels deep: refused above {MAX_JSON_DEPTH}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ModelFileError(f"{what} is not valid JSON ({str(exc)[:80]}): re-export the model") from None


def _checked_text(props: Mapping[str, str], key: str, source: str, default: str | None = None) -> str:
    text = props.get(PREFIX + key, default)
    if text is None:
        raise ModelFileError(f"{source} has damaged edgemtl metadata: {PREFIX}{key} is missing")
    if key == "tasks":
        bounded_json(text, f"{source} metadata {PREFIX}{key}")  # the bounds; tasks_from_json parses it
    elif len(text) > 200:
        raise ModelFileError(f"{source} metadata {PREFIX}{key} is {len(text)} characters: expected a short word")
    return text


def _resize_policy(model_input: Mapping[str, Any], source: str) -> str:
    """The recorded resize policy; files written before policies existed were all `stretch`."""
    policy = model_input.get("resize", DEFAULT_POLICY)
    try:
        return check_policy(str(policy)[:40])
    except ConfigError as exc:
        raise ModelFileError(f"{source} metadata {PREFIX}input.resize: {exc}") from None


def _size(entry: Mapping[str, Any]) -> tuple[int, int]:
    return int(entry["height"]), int(entry["width"])


def _frame_size(model_input: Mapping[str, Any]) -> tuple[int, int] | str:
    return DYNAMIC if DYNAMIC in (model_input["height"], model_input["width"]) else _size(model_input)


def _output_names(outputs: Any, source: str) -> dict[str, dict[str, str]]:
    """`outputs` must map task → field → output name, all strings."""
    if not isinstance(outputs, dict) or not all(
        isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values()) for fields in outputs.values()
    ):
        raise ModelFileError(f"{source} metadata {PREFIX}outputs is not {{task: {{field: output name}}}}")
    return outputs


def _check_input(metadata: ModelMetadata, inputs: Sequence[Any], source: str) -> None:
    names = [i.name for i in inputs]
    if names != [metadata.input_name]:
        raise ModelFileError(
            f"{source}: metadata input.name is {metadata.input_name!r}, the graph's inputs are {names}"
        )
    graph_input = inputs[0]
    if metadata.features is not None:
        check_vector_input(metadata.features, metadata.batch, graph_input, source)
        return
    dtype = GRAPH_DTYPES.get(graph_input.type, graph_input.type)
    if metadata.input_dtype != "uint8" or dtype != "uint8":
        raise ModelFileError(
            f"{source}: metadata input.dtype is {metadata.input_dtype}, graph input {graph_input.name!r} is "
            f"{dtype}: the Engine feeds uint8 frames"
        )
    if metadata.layout != "NHWC":
        raise ModelFileError(f"{source}: metadata input.layout is {metadata.layout!r}: the Engine feeds NHWC frames")
    shape = list(graph_input.shape)
    if len(shape) != 4:
        raise ModelFileError(f"{source}: graph input {graph_input.name!r} has shape {shape}: expected NHWC, 4 axes")
    height, width = metadata.graph_size
    expected = {"batch": metadata.batch, "height": height, "width": width}
    for (axis, want), got in zip([*expected.items(), ("channels", 3)], shape, strict=True):
        if want is None and isinstance(got, int):
            raise ModelFileError(
                f"{source}: metadata input.{axis} is dynamic, graph input {graph_input.name!r} has a fixed "
                f"{axis} of {got}"
            )
        if isinstance(got, int) and got != want:
            raise ModelFileError(
                f"{source}: metadata input.{axis} is {want}, graph input {graph_input.name!r} has {got}"
            )


def _check_overlay(metadata: ModelMetadata, graph: Mapping[str, Any], source: str) -> None:
    """The blended frame: a uint8 (N, H, W, 3) output the metadata names, of a per-pixel task it has."""
    name, task = metadata.overlay.get("output"), metadata.overlay.get("task")
    tasks = {t.name: t for t in metadata.tasks}
    if task not in tasks or not kind_of(tasks[task]).per_pixel:
        raise ModelFileError(f"{source}: metadata overlay.task is {task!r}, which is not a segmentation task of it")
    if name not in graph:
        raise ModelFileError(f"{source}: metadata overlay.output is {name!r}, which the graph lacks")
    output = graph[name]
    shape = list(output.shape)
    if GRAPH_DTYPES.get(output.type) != "uint8" or len(shape) != 4 or shape[3] != 3:
        raise ModelFileError(f"{source}: overlay output {name!r} is {output.type} {shape}: expected uint8 (N, H, W, 3)")


def _check_output(where: str, output: Any, dtype: str, axes: tuple[int | None, ...], task: TaskSpec) -> None:
    got = GRAPH_DTYPES.get(output.type, output.type)
    if got != dtype:
        raise ModelFileError(f"{where} {got}: a {task.kind.value} output there is {dtype}")
    shape = list(output.shape)
    if len(shape) != 1 + len(axes):
        raise ModelFileError(f"{where} shape {shape}: expected {1 + len(axes)} axes")
    kind = kind_of(task)
    for want, size in zip(axes, shape[1:], strict=True):
        if want is not None and isinstance(size, int) and size != want:
            if want == kind.num_outputs(task):
                said = f"has {kind.count_of(want)} ({', '.join(task.classes) or 'one value'})"
            else:  # an axis that is not the classes: detection's K
                said = f"says {want} there ({'; '.join(kind.spec_lines(task)) or 'its outputs'})"
            raise ModelFileError(f"{where} shape {shape}: the metadata's task {task.name!r} {said}")
