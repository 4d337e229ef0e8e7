"""`edgemtl eval`: the same table, metrics.json and plots for a checkpoint and for its export; one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgemtl.data.folder import write_dataset
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line_error, assert_png, invoke, snapshot, strict_loads, write_foreign_onnx

SCENE, SEGMENTATION = NAVIGATION_TASKS
EVAL_FILES = {"metrics.json", "confusion_scene.png", "iou_segmentation.png", "predictions.png"}


def evaluate(model, out, *args):
    result = invoke("eval", "-m", model, "--frames", 16, "--device", "cpu", "-o", out, *args)
    assert result.exit_code == 0, result.output
    return result, strict_loads((out / "metrics.json").read_text())


def check_outputs(result, report, out, frames: int = 16) -> None:
    assert {p.name for p in out.iterdir()} == EVAL_FILES
    for name in EVAL_FILES - {"metrics.json"}:
        assert_png(out / name)
    assert report["frames"] == frames
    assert set(report["metrics"]) == {"scene", "segmentation"}
    assert np.asarray(report["metrics"]["scene"]["confusion"]).sum() == frames
    for text in ("task", "metric", "accuracy", "miou", "iou_obstacle", f"{frames} frames", str(out)):
        assert text in result.output, f"{text!r} missing from:\n{result.output}"
    assert "confusion" not in result.output, "the table holds numbers; the matrix is a plot"


def test_eval_of_a_checkpoint_and_of_its_export_agree(tmp_path, trained_run, exported_model):
    checkpoint_result, checkpoint = evaluate(trained_run.best_checkpoint, tmp_path / "pt")
    check_outputs(checkpoint_result, checkpoint, tmp_path / "pt")
    assert "PyTorch" in checkpoint_result.output

    onnx_result, onnx = evaluate(exported_model, tmp_path / "onnx")
    check_outputs(onnx_result, onnx, tmp_path / "onnx")
    assert "ONNX Runtime" in onnx_result.output and "fp32" in onnx_result.output
    for task, metric in ((SCENE.name, "accuracy"), (SEGMENTATION.name, "miou")):
        assert onnx["metrics"][task][metric] == pytest.approx(checkpoint["metrics"][task][metric], abs=0.02)


def test_eval_twice_never_overwrites(tmp_path, exported_model):
    out = tmp_path / "out"
    evaluate(exported_model, out)
    before = snapshot(out)
    result, _ = evaluate(exported_model, tmp_path / "out")
    assert str(tmp_path / "out2") in result.output
    assert snapshot(out) == before


def test_eval_on_a_dataset_folder(tmp_path, exported_model, tiny_data):
    folder = write_dataset(tmp_path / "set", tiny_data.subset(slice(0, 12)))
    result, report = evaluate(exported_model, tmp_path / "out", "--data", folder)
    check_outputs(result, report, tmp_path / "out", frames=12)
    assert report["data"] == str(folder)


def test_a_metric_without_samples_is_null_in_strict_json(tmp_path, exported_model, tiny_data):
    """No frame labels the scene: its accuracy is NaN, which metrics.json writes as null (bare NaN is not JSON)."""
    unlabelled = tiny_data.subset(slice(0, 12))
    unlabelled.targets[SCENE.name] = np.full_like(unlabelled.targets[SCENE.name], -1)  # the missing class
    folder = write_dataset(tmp_path / "set", unlabelled)
    _, report = evaluate(exported_model, tmp_path / "out", "--data", folder)  # parsed strictly
    assert report["metrics"][SCENE.name]["accuracy"] is None, report["metrics"][SCENE.name]
    assert 0.0 <= report["metrics"][SEGMENTATION.name]["miou"] <= 1.0


def test_eval_of_a_missing_model(tmp_path):
    path = tmp_path / "missing.pt"
    result = invoke("eval", "-m", path, "-o", tmp_path / "out")
    assert_one_line_error(result, str(path), "does not exist", "edgemtl train", "edgemtl export")
    assert not (tmp_path / "out").exists()


def test_eval_of_a_file_that_is_no_model(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert_one_line_error(invoke("eval", "-m", path), str(path), "neither a checkpoint nor an .onnx file")


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_eval_of_a_corrupt_model(tmp_path, suffix):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(64))
    assert_one_line_error(invoke("eval", "-m", path, "-o", tmp_path / "out"), str(path))
    assert not (tmp_path / "out").exists()


def test_eval_of_a_foreign_onnx_file(tmp_path):
    path = write_foreign_onnx(tmp_path / "identity.onnx")
    assert_one_line_error(invoke("eval", "-m", path), str(path), "not an edgemtl export")


def test_eval_on_a_dataset_without_the_model_tasks(tmp_path, exported_model, tiny_data):
    scene_only = tiny_data.subset(slice(0, 8))
    scene_only.targets.pop(SEGMENTATION.name)
    folder = write_dataset(tmp_path / "set", scene_only, tasks=(SCENE,))
    result = invoke("eval", folder, "-m", exported_model, "-o", tmp_path / "out")
    assert_one_line_error(result, SEGMENTATION.name)
    assert not (tmp_path / "out").exists()


def test_synthetic_data_lacking_a_task_names_the_model_and_the_data(tmp_path, tiny_data):
    from edgemtl.commands.evaluate import evaluate_on
    from edgemtl.errors import DataError
    from edgemtl.tasks import TaskKind, TaskSpec

    class MultilabelModel:
        path = tmp_path / "objects.onnx"
        tasks = (SCENE, TaskSpec("objects", TaskKind.MULTILABEL, ("cone", "box")))
        input_size = (32, 32)
        batch = 1
        description = "a model with a task synthetic scenes do not label here"

    with pytest.raises(DataError, match=r"cannot evaluate .*objects\.onnx on synthetic: .*'objects'"):
        evaluate_on(MultilabelModel(), tiny_data, "synthetic", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_eval_without_the_training_extra_says_what_to_install(tmp_path, exported_model, monkeypatch):
    import sys

    prefixes = ("matplotlib.", "edgemtl.commands.evaluate")
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith(prefixes)]:
        monkeypatch.delitem(sys.modules, name)
    for name in [m for m in sys.modules if m.startswith(("edgemtl.plots", "edgemtl.train.plots"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails, as on a runtime install
    result = invoke("eval", "-m", exported_model, "-o", tmp_path / "eval")
    assert_one_line_error(result, "needs matplotlib, which comes with the training extra: pip install 'edgemtl[train]'")
