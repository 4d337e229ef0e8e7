"""Model files from other people: the Engine checks an export's metadata against its graph, parses metadata
within bounds, and never follows external data out of the model's folder."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import onnx
import pytest

from edgemtl.errors import ForeignModelError, ModelFileError
from edgemtl.kinds import KINDS
from edgemtl.runtime import Engine
from edgemtl.runtime.metadata import MAX_JSON_DEPTH, MAX_VALUE_CHARS, ModelMetadata, bounded_json
from edgemtl.runtime.modelfile import check_external_data, external_data_paths
from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec
from tests.helpers import (
    assert_one_line,
    copy_metadata,
    doctor_metadata,
    strict_loads,
    write_external_data_onnx,
    write_foreign_onnx,
)

SCENE, SEGMENTATION = NAVIGATION_TASKS


def _props(path) -> dict[str, str]:
    return {p.key.removeprefix("edgemtl."): p.value for p in onnx.load(str(path)).metadata_props}


def _with_scene_classes(exported_model, tmp_path, classes: list[str]):
    tasks = json.loads(_props(exported_model)["tasks"])
    tasks[0].update(classes=classes, extra={})
    return doctor_metadata(exported_model, tmp_path / "doctored.onnx", {"tasks": json.dumps(tasks)})


@pytest.mark.parametrize("classes", [[*SCENE.classes, "reverse"], list(SCENE.classes[:3])], ids=["5", "3"])
def test_a_class_count_the_graph_does_not_give_is_refused(exported_model, tmp_path, classes):
    path = _with_scene_classes(exported_model, tmp_path, classes)
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "outputs.scene.probs", "['batch', 4]", f"has {len(classes)} class")


def test_an_output_the_graph_lacks_is_refused_when_the_file_opens(exported_model, tmp_path):
    outputs = json.loads(_props(exported_model)["outputs"])
    outputs["scene"]["probs"] = "scene_probabilities"
    path = doctor_metadata(exported_model, tmp_path / "renamed.onnx", {"outputs": json.dumps(outputs)})
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "'scene_probabilities'", "which the graph lacks", "scene_probs")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"height": 64, "width": 64}, ("input.height is 64", "has 32")),
        ({"dtype": "float32"}, ("input.dtype is float32", "uint8")),
        ({"layout": "NCHW"}, ("input.layout is 'NCHW'",)),
        ({"name": "images"}, ("input.name is 'images'", "['frames']")),
    ],
    ids=["size", "dtype", "layout", "name"],
)
def test_an_input_unlike_the_graph_is_refused(exported_model, tmp_path, change, fragments):
    model_input = {**json.loads(_props(exported_model)["input"]), **change}
    path = doctor_metadata(exported_model, tmp_path / "input.onnx", {"input": json.dumps(model_input)})
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), *fragments)


def test_a_foreign_graph_with_copied_metadata_is_refused(exported_model, tmp_path):
    path = copy_metadata(exported_model, write_foreign_onnx(tmp_path / "disguised.onnx"))
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "input.name is 'frames'", "['x']")


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"outputs": "{not json"}, ("edgemtl.outputs is not valid JSON",)),
        ({"tasks": "[{]"}, ("edgemtl.tasks",)),
        ({"outputs": json.dumps({"scene": ["probs"]})}, ("edgemtl.outputs is not {task: {field: output name}}",)),
        ({"input": None}, ("edgemtl.input is missing",)),
        ({"precision": "x" * 1000}, ("edgemtl.precision is 1000 characters",)),
    ],
    ids=["bad-json", "bad-tasks", "outputs-shape", "missing", "long-word"],
)
def test_damaged_metadata_names_the_file_and_key(exported_model, tmp_path, changes, fragments):
    path = doctor_metadata(exported_model, tmp_path / "damaged.onnx", changes)
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), *fragments)


def test_an_unknown_kind_in_metadata_names_the_file(exported_model, tmp_path):
    tasks = _props(exported_model)["tasks"].replace('"classification"', '"keypoints"')
    path = doctor_metadata(exported_model, tmp_path / "kind.onnx", {"tasks": tasks})
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), "keypoints")


def test_metadata_json_is_parsed_within_bounds():
    assert bounded_json('{"a": ["[[[[", {"b": "]]]"}]}', "m") == {"a": ["[[[[", {"b": "]]]"}]}  # text is no depth
    assert bounded_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "m")
    with pytest.raises(ModelFileError) as error:
        bounded_json("[" * 100_000 + "]" * 100_000, "model.onnx metadata edgemtl.extra")
    assert_one_line(error, "model.onnx metadata edgemtl.extra", "100000 levels")
    with pytest.raises(ModelFileError) as error:
        bounded_json(json.dumps("x" * MAX_VALUE_CHARS), "m")
    assert_one_line(error, f"refused above {MAX_VALUE_CHARS}")


def test_a_nan_training_metric_is_null_in_the_metadata_and_still_described(exported_model):
    """ONNX consumers outside Python parse the metadata strictly: a metric with nothing to score is null."""
    metadata = Engine(exported_model, device="cpu").metadata
    with_nan = dataclasses.replace(metadata, metrics={"scene": {"accuracy": 0.5, "f1_blocked": math.nan}})
    props = with_nan.to_props()
    assert strict_loads(props["edgemtl.metrics"]) == {"scene": {"accuracy": 0.5, "f1_blocked": None}}
    read_back = ModelMetadata.from_props(props, "model.onnx")
    assert read_back.metrics == {"scene": {"accuracy": 0.5, "f1_blocked": None}}
    assert "validation: accuracy 0.5000, f1_blocked nan" in "\n".join(read_back.describe())


def test_every_kind_states_its_outputs_as_the_graph_checks_them():
    for kind in KINDS.values():
        task = TaskSpec.from_dict({"name": "t", "kind": kind.value, "classes": ["a", "b", "c"]})
        for output_field in kind.outputs:
            dtype, axes = kind.output_axes(task, output_field)
            assert np.dtype(dtype) and all(a is None or a > 0 for a in axes), (kind.value, output_field)
    assert KINDS["classification"].output_axes(SCENE, "probs") == ("float32", (4,))
    assert KINDS["classification"].output_axes(SCENE, "label") == ("int64", ())
    assert KINDS["segmentation"].output_axes(SEGMENTATION, "mask") == ("uint8", (None, None))
    assert KINDS["segmentation"].output_axes(SEGMENTATION, "logits") == ("float32", (4, None, None))
    with pytest.raises(KeyError):
        KINDS["classification"].output_axes(SCENE, "mask")


# --- external data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "sub/../../secret.bin"])
def test_external_data_outside_the_model_folder_is_never_read(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    path = write_external_data_onnx(tmp_path / "models" / "model.onnx", location)
    assert external_data_paths(path.read_bytes()) == [location]
    with pytest.raises(ModelFileError) as error:
        Engine(path, device="cpu")
    assert_one_line(error, str(path), repr(location), "outside its folder")


def test_a_link_out_of_the_model_folder_is_outside(tmp_path):
    (tmp_path / "secret.bin").write_bytes(np.ones(3, np.float32).tobytes())
    (tmp_path / "models").mkdir()
    os.symlink(tmp_path / "secret.bin", tmp_path / "models" / "weights.bin")
    path = write_external_data_onnx(tmp_path / "models" / "model.onnx", "weights.bin")
    with pytest.raises(ModelFileError) as error:
        check_external_data(path)
    assert_one_line(error, "'weights.bin'", "outside its folder")


def test_external_data_beside_the_model_is_allowed(tmp_path):
    path = write_external_data_onnx(tmp_path / "model.onnx", "weights.bin")
    (tmp_path / "weights.bin").write_bytes(np.ones(3, np.float32).tobytes())
    check_external_data(path)
    with pytest.raises(ForeignModelError):  # it loaded, data and all; it is just not an edgemtl export
        Engine(path, device="cpu")


def test_bytes_that_are_not_protobuf_name_no_external_data():
    assert external_data_paths(b"\xff" * 64) == []
    assert external_data_paths(b"") == []
