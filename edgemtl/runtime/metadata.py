"""What an exported file says about itself, stored in the ONNX model's metadata_props.

Flat keys with JSON values, one fact per key, so any ONNX consumer (C++ `GetCustomMetadataMap`,
Triton, Netron) can read a single fact without an edgemtl parser. The exporter writes this
structure and the Engine reads it; nothing about the model is hard-coded on either side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgemtl.errors import ForeignModelError, ModelFileError
from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskSpec, tasks_from_json, tasks_to_json

FORMAT_NAME = "edgemtl-onnx"
FORMAT_VERSION = 1
PREFIX = "edgemtl."
INPUT_NAME = "frames"


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

    def to_props(self) -> dict[str, str]:
        props = {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "version": self.edgemtl_version,
            "tasks": tasks_to_json(self.tasks),
            "input": json.dumps(
                {
                    "name": self.input_name,
                    "height": self.input_size[0],
                    "width": self.input_size[1],
                    "layout": self.layout,
                    "color_order": self.color_order,
                    "dtype": self.input_dtype,
                    "batch": self.batch or "dynamic",
                }
            ),
            "normalization": json.dumps({"mean": list(self.mean), "std": list(self.std), "scale": "0-255"}),
            "outputs": json.dumps(self.outputs),
            "precision": self.precision,
            "preset": self.preset,
            "opset": str(self.opset),
            "metrics": json.dumps(self.metrics),
            "calibration": json.dumps(self.calibration),
            "extra": json.dumps(self.extra),
        }
        return {PREFIX + key: value for key, value in props.items()}

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str) -> ModelMetadata:
        """Parse metadata_props; `source` names the file in errors."""
        if props.get(PREFIX + "format") != FORMAT_NAME:
            raise ForeignModelError(
                f"{source} is an ONNX model but not an edgemtl export (no {PREFIX}format metadata): "
                "export it with `edgemtl export`, or run it with onnxruntime directly"
            )
        version = props.get(PREFIX + "format_version")
        if version != str(FORMAT_VERSION):
            raise ModelFileError(
                f"{source} has edgemtl format version {version}: this edgemtl reads version {FORMAT_VERSION}; "
                "re-export it with this version"
            )
        try:
            model_input = json.loads(props[PREFIX + "input"])
            normalization = json.loads(props[PREFIX + "normalization"])
            return cls(
                tasks=tasks_from_json(props[PREFIX + "tasks"]),
                input_size=(int(model_input["height"]), int(model_input["width"])),
                mean=tuple(normalization["mean"]),
                std=tuple(normalization["std"]),
                outputs=json.loads(props[PREFIX + "outputs"]),
                precision=props.get(PREFIX + "precision", "fp32"),
                preset=props.get(PREFIX + "preset", ""),
                opset=int(props.get(PREFIX + "opset", "0")),
                edgemtl_version=props.get(PREFIX + "version", ""),
                metrics=json.loads(props.get(PREFIX + "metrics", "{}")),
                batch=None if model_input.get("batch", "dynamic") == "dynamic" else int(model_input["batch"]),
                calibration=json.loads(props.get(PREFIX + "calibration", "{}")),
                extra=json.loads(props.get(PREFIX + "extra", "{}")),
                input_name=model_input["name"],
                layout=model_input["layout"],
                color_order=model_input["color_order"],
                input_dtype=model_input["dtype"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelFileError(f"{source} has damaged edgemtl metadata ({exc!r}): re-export the model") from None

    def describe(self) -> list[str]:
        """Human-readable lines, for `edgemtl info` and logs."""
        height, width = self.input_size
        lines = [
            f"edgemtl export (format {FORMAT_VERSION}, edgemtl {self.edgemtl_version}), preset {self.preset}, "
            f"precision {self.precision}, opset {self.opset}",
            f"input  {self.input_name}: {self.input_dtype} {self.layout} {self.color_order}, "
            f"batch {self.batch or 'dynamic'} x {height} x {width} x 3; "
            f"normalization mean {list(self.mean)} std {list(self.std)}",
        ]
        if self.calibration:
            lines.append("int8   calibration: " + ", ".join(f"{k} {v}" for k, v in self.calibration.items()))
        for task in self.tasks:
            outputs = ", ".join(self.outputs.get(task.name, {}).values())
            classes = ", ".join(task.classes) if task.classes else "(one value)"
            lines.append(f"task   {task.name} ({task.kind.value}): {classes} -> {outputs}")
            lines += [f"       {line}" for line in kind_of(task).spec_lines(task)]  # e.g. the flags' thresholds
            if task.name in self.metrics:
                scores = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics[task.name].items() if isinstance(v, float))
                lines.append(f"       validation: {scores}")
        return lines
