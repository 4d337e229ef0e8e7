"""Fault cases of model files: missing, foreign, truncated, hostile, and metadata that disagrees with its graph."""

from __future__ import annotations

import json

import numpy as np

from tests.cli.fault_kit import (
    Kit,
    clip,
    doctored,
    fault,
    input_changed,
    nothing,
    photo,
    tasks_with_scene_classes,
)
from tests.helpers import (
    copy_metadata,
    truncate,
    write_external_data_onnx,
    write_foreign_onnx,
)

# --- model files ------------------------------------------------------------------------------------------

fault(
    "model-missing",
    "a model file that does not exist",
    "edgemtl info missing.onnx",
    "Error: model file missing.onnx does not exist: expected an .onnx file written by `edgemtl export`",
)(nothing)


@fault(
    "model-folder",
    "a folder where the model file should be",
    "edgemtl info folder.onnx",
    "Error: model file folder.onnx is a folder: expected an .onnx file written by `edgemtl export`",
    "the folder and its contents",
)
def _(kit: Kit) -> None:
    (kit.root / "folder.onnx").mkdir()
    (kit.root / "folder.onnx" / "keep.txt").write_text("mine\n")


@fault(
    "model-empty",
    "an empty model file (0 bytes)",
    "edgemtl info empty.onnx",
    "Error: empty.onnx is not a loadable ONNX model (…)",
    "the file",
)
def _(kit: Kit) -> None:
    (kit.root / "empty.onnx").write_bytes(b"")


@fault(
    "model-garbage",
    "random bytes named .onnx",
    "edgemtl predict photo.png -m garbage.onnx -o out",
    "Error: garbage.onnx is not a loadable ONNX model (…)",
    "the file, the image",
)
def _(kit: Kit) -> None:
    photo(kit)
    (kit.root / "garbage.onnx").write_bytes(np.random.default_rng(0).bytes(4096))


@fault(
    "model-truncated",
    "an export cut in half (an interrupted copy)",
    "edgemtl camera clip.avi -m half.onnx -o none",
    "Error: half.onnx is not a loadable ONNX model (…)",
    "the file",
)
def _(kit: Kit) -> None:
    truncate(kit.model("half.onnx"), 0.5)
    clip(kit)


@fault(
    "model-ir-too-new",
    "an ONNX file of an IR version newer than this onnxruntime reads",
    "edgemtl info future.onnx",
    "Error: future.onnx is not a loadable ONNX model (Unsupported model IR version: 99, max supported IR version: "
    "…; onnxruntime …)",
    "the file",
)
def _(kit: Kit) -> None:
    write_foreign_onnx(kit.root / "future.onnx", ir_version=99)


@fault(
    "model-foreign",
    "a valid ONNX model edgemtl did not write",
    "edgemtl predict photo.png -m foreign.onnx -o out",
    "Error: foreign.onnx is an ONNX model but not an edgemtl export (no edgemtl.format metadata): …",
)
def _(kit: Kit) -> None:
    photo(kit)
    write_foreign_onnx(kit.root / "foreign.onnx")


fault(
    "meta-more-classes",
    "metadata naming 5 classes where the graph gives 4",
    "edgemtl predict photo_0.png -m five.onnx -o out",
    "Error: five.onnx: metadata outputs.scene.probs is 'scene_probs', a graph output of shape ['batch', 4]: "
    "the metadata's task 'scene' has 5 classes (left, straight, right, blocked, reverse)",
)(doctored(lambda m: tasks_with_scene_classes(m, ["left", "straight", "right", "blocked", "reverse"]), "five.onnx"))

fault(
    "meta-fewer-classes",
    "metadata naming 3 classes where the graph gives 4",
    "edgemtl predict photo_0.png -m three.onnx -o out",
    "Error: three.onnx: metadata outputs.scene.probs is 'scene_probs', a graph output of shape ['batch', 4]: "
    "the metadata's task 'scene' has 3 classes (left, straight, right)",
)(doctored(lambda m: tasks_with_scene_classes(m, ["left", "straight", "right"]), "three.onnx"))


def _renamed_output(current: dict) -> dict[str, str]:
    outputs = json.loads(current["outputs"])
    outputs["scene"]["probs"] = "scene_probabilities"
    return {"outputs": json.dumps(outputs)}


fault(
    "meta-missing-output",
    "metadata naming an output the graph lacks",
    "edgemtl predict photo_0.png -m renamed.onnx -o out",
    "Error: renamed.onnx: metadata outputs.scene.probs is 'scene_probabilities', which the graph lacks "
    "(its outputs: scene_probs, scene_label, segmentation_mask)",
)(doctored(_renamed_output, "renamed.onnx"))

fault(
    "meta-input-size",
    "metadata input size 64 on a graph taking 32",
    "edgemtl info size64.onnx",
    "Error: size64.onnx: metadata input.height is 64, graph input 'frames' has 32",
)(doctored(lambda m: input_changed(m, height=64, width=64), "size64.onnx"))

fault(
    "meta-input-dtype",
    "metadata saying the input is float32",
    "edgemtl info float.onnx",
    "Error: float.onnx: metadata input.dtype is float32, graph input 'frames' is uint8: the Engine feeds uint8 frames",
)(doctored(lambda m: input_changed(m, dtype="float32"), "float.onnx"))


def _task_without_outputs(current: dict) -> dict[str, str]:
    outputs = json.loads(current["outputs"])
    outputs["segmentation"] = {}
    return {"outputs": json.dumps(outputs)}


fault(
    "meta-output-missing-field",
    "metadata naming no mask output for a segmentation task",
    "edgemtl info nomask.onnx",
    "Error: nomask.onnx: metadata outputs.segmentation names no output for mask: a segmentation task has mask",
)(doctored(_task_without_outputs, "nomask.onnx"))


@fault(
    "meta-on-foreign-graph",
    "a foreign graph carrying an export's edgemtl metadata",
    "edgemtl info disguised.onnx",
    "Error: disguised.onnx: metadata input.name is 'frames', the graph's inputs are ['x']",
)
def _(kit: Kit) -> None:
    copy_metadata(kit.model_file, write_foreign_onnx(kit.root / "disguised.onnx"))


fault(
    "meta-bad-json",
    "metadata that is not JSON",
    "edgemtl info broken.onnx",
    "Error: broken.onnx metadata edgemtl.outputs is not valid JSON (…): re-export the model",
)(doctored(lambda m: {"outputs": "{scene: probs"}, "broken.onnx"))

fault(
    "meta-unknown-kind",
    "a task of a kind edgemtl does not know",
    "edgemtl info kind.onnx",
    "Error: kind.onnx metadata edgemtl.tasks: …'keypoints'…",
)(doctored(lambda m: {"tasks": m["tasks"].replace('"classification"', '"keypoints"')}, "kind.onnx"))

fault(
    "meta-missing-key",
    "metadata without its input description",
    "edgemtl info noinput.onnx",
    "Error: noinput.onnx has damaged edgemtl metadata: edgemtl.input is missing",
)(doctored(lambda m: {"input": None}, "noinput.onnx"))

fault(
    "meta-huge",
    "a 3 MB metadata value",
    "edgemtl info huge.onnx",
    "Error: huge.onnx metadata edgemtl.extra is 3000002 characters: refused above 1048576 (edgemtl writes kB)",
)(doctored(lambda m: {"extra": json.dumps("x" * 3_000_000)}, "huge.onnx"))

fault(
    "meta-deep",
    "metadata JSON nested 100 000 levels deep",
    "edgemtl info deep.onnx",
    "Error: deep.onnx metadata edgemtl.metrics nests 100000 levels deep: refused above 32",
)(doctored(lambda m: {"metrics": "[" * 100_000 + "]" * 100_000}, "deep.onnx"))

fault(
    "meta-version",
    "an export of a future format version",
    "edgemtl info future.onnx",
    "Error: future.onnx has edgemtl format version 99: this edgemtl reads version 1; re-export it with this version",
)(doctored(lambda m: {"format_version": "99"}, "future.onnx"))


@fault(
    "external-data-parent",
    "a weight stored in ../secret.bin, outside the model's folder",
    "edgemtl info models/model.onnx",
    "Error: models/model.onnx refers to external data '../secret.bin' outside its folder …: refused, a model "
    "file may only read data beside it",
    "secret.bin is never read",
)
def _(kit: Kit) -> None:
    (kit.root / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    write_external_data_onnx(kit.root / "models" / "model.onnx", "../secret.bin")


@fault(
    "external-data-absolute",
    "a weight stored at an absolute path (/etc/passwd)",
    "edgemtl info passwd.onnx",
    "Error: passwd.onnx refers to external data '/etc/passwd' outside its folder …: refused, a model file may only "
    "read data beside it",
)
def _(kit: Kit) -> None:
    write_external_data_onnx(kit.root / "passwd.onnx", "/etc/passwd")
