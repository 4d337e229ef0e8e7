import json

import numpy as np
import onnx
import pytest
import torch

from edgemtl.deploy import ExportOptions, ExportWrapper, export_onnx, verify_parity
from edgemtl.errors import ExportError, OutputError
from edgemtl.runtime.metadata import ModelMetadata
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import load_checkpoint


def test_exported_file_passes_the_full_checker_and_describes_itself(exported_model):
    proto = onnx.load(str(exported_model))
    onnx.checker.check_model(proto, full_check=True)
    props = {p.key: p.value for p in proto.metadata_props}
    metadata = ModelMetadata.from_props(props, "test")
    assert metadata.tasks == NAVIGATION_TASKS
    assert metadata.input_size == (32, 32)
    assert (metadata.layout, metadata.color_order, metadata.input_dtype) == ("NHWC", "BGR", "uint8")
    assert metadata.outputs["scene"] == {"probs": "scene_probs", "label": "scene_label"}
    assert "accuracy" in json.loads(props["edgemtl.metrics"])["scene"]
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [32, 32, 3]


def test_raw_logits_are_added_on_request(trained_run, tmp_path, tiny_data):
    result = export_onnx(
        load_checkpoint(trained_run.best_checkpoint),
        tmp_path / "raw.onnx",
        ExportOptions(raw_logits=True),
        verify_data=tiny_data.subset(slice(0, 4)),
    )
    names = [o.name for o in onnx.load(str(result.path)).graph.output]
    assert names == ["scene_probs", "scene_label", "scene_logits", "segmentation_mask", "segmentation_logits"]
    assert result.parity.passed


def test_parity_catches_a_model_that_differs(trained_run, exported_model, tiny_data):
    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    model = checkpoint.build_model()
    with torch.no_grad():
        for parameter in model.heads["scene"].parameters():
            parameter.add_(0.5)
    wrapper = ExportWrapper(model, checkpoint.mean, checkpoint.std).eval()
    with pytest.raises(ExportError, match=r"scene_probs: max_abs_diff .* FAILED"):
        verify_parity(exported_model, wrapper, tiny_data.images[:8])


def test_existing_output_is_refused_and_left_intact(trained_run, exported_model):
    before = exported_model.read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        export_onnx(load_checkpoint(trained_run.best_checkpoint), exported_model)
    assert exported_model.read_bytes() == before


def test_a_failed_verification_replaces_nothing(trained_run, tmp_path, tiny_data, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")

    def disagree(*args, **kwargs):
        raise ExportError("model.onnx disagrees with PyTorch")

    monkeypatch.setattr("edgemtl.deploy.onnx_export.verify_parity", disagree)
    with pytest.raises(ExportError):
        export_onnx(
            load_checkpoint(trained_run.best_checkpoint),
            target,
            verify_data=tiny_data.subset(slice(0, 2)),
            overwrite=True,
        )
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.parametrize("name", ["model.pt", "missing_dir/model.onnx"])
def test_bad_output_paths(trained_run, tmp_path, name):
    with pytest.raises(OutputError):
        export_onnx(load_checkpoint(trained_run.best_checkpoint), tmp_path / name)


def test_batch_axis_is_dynamic(exported_model):
    import onnxruntime as ort

    session = ort.InferenceSession(str(exported_model), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        probs, labels, masks = session.run(None, {"frames": np.zeros((batch, 32, 32, 3), np.uint8)})
        assert probs.shape == (batch, 4) and labels.shape == (batch,) and masks.shape == (batch, 32, 32)
