"""Vector models end to end: the checkpoint's statistics, the export's parity and metadata, the Engine's
checks, and the commands (info, predict, bench) on a tiny MLP trained once per session (tests/conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from edgemtl.data import TableColumns, read_table
from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS
from edgemtl.deploy import ExportOptions, ExportWrapper, export_onnx
from edgemtl.errors import ConfigError, DataError, FeatureError, FrameError, ModelFileError
from edgemtl.model import input_preprocess
from edgemtl.runtime import Engine
from edgemtl.train import load_checkpoint

pytestmark = pytest.mark.slow


def test_checkpoint_keeps_the_training_splits_statistics(vector_run, vector_table):
    checkpoint = load_checkpoint(vector_run.best_checkpoint)
    assert checkpoint.features.names == FEATURE_NAMES
    rows = read_table(vector_table, TableColumns(FEATURE_NAMES), TABULAR_TASKS)
    train = rows.features[rows.info["split"] == "train"]
    np.testing.assert_allclose(checkpoint.features.mean, train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(checkpoint.features.std, train.std(axis=0), rtol=1e-4)


def test_onnx_matches_pytorch_on_raw_rows(vector_run, vector_model, vector_table):
    checkpoint = load_checkpoint(vector_run.best_checkpoint)
    preprocess = input_preprocess(checkpoint.mean, checkpoint.std, checkpoint.features)
    wrapper = ExportWrapper(checkpoint.build_model(), checkpoint.mean, checkpoint.std, preprocess=preprocess).eval()
    rows = read_table(vector_table, TableColumns(FEATURE_NAMES), TABULAR_TASKS).features
    engine = Engine(vector_model, device="cpu")
    ours = engine.run(rows)
    with torch.no_grad():
        reference = dict(zip(wrapper.output_names, wrapper(torch.from_numpy(rows))))
    for name, value in reference.items():
        difference = np.abs(ours[name].astype(np.float64) - value.numpy().astype(np.float64))
        scale = np.maximum(1.0, np.abs(value.numpy()))  # values in raw units (mmHg ~120): float32 ulps there
        assert (difference / scale).max() <= 1e-5, name


def test_metadata_names_features_in_order_with_statistics(vector_model, vector_run):
    props = {p.key: p.value for p in onnx.load(str(vector_model)).metadata_props}
    model_input = json.loads(props["edgemtl.input"])
    assert model_input["kind"] == "vector" and model_input["features"] == list(FEATURE_NAMES)
    assert model_input["dtype"] == "float32"
    normalization = json.loads(props["edgemtl.normalization"])
    assert normalization["mean"] == list(load_checkpoint(vector_run.best_checkpoint).features.mean)
    engine = Engine(vector_model, device="cpu")
    assert engine.features.names == FEATURE_NAMES and engine.input_size == (1, len(FEATURE_NAMES))


def test_metadata_that_disagrees_with_the_graph_is_refused(vector_model, tmp_path):
    proto = onnx.load(str(vector_model))
    for prop in proto.metadata_props:
        if prop.key == "edgemtl.input":
            value = json.loads(prop.value)
            value["features"] = value["features"][:-1]
            prop.value = json.dumps(value)
        if prop.key == "edgemtl.normalization":
            value = json.loads(prop.value)
            value["mean"], value["std"] = value["mean"][:-1], value["std"][:-1]
            prop.value = json.dumps(value)
    onnx.save(proto, str(tmp_path / "lying.onnx"))
    with pytest.raises(ModelFileError, match=r"metadata names 11 features, graph input 'features' takes 12"):
        Engine(tmp_path / "lying.onnx", device="cpu")


def test_engine_predicts_rows_and_refuses_bad_ones(vector_model):
    engine = Engine(vector_model, device="cpu")
    means = np.asarray(engine.features.mean, dtype=np.float32)
    (one,) = engine.predict_features(means)  # a single (F,) row
    assert set(one) == {"risk", "pressure", "conditions"}
    assert one["risk"].label in ("low", "medium", "high") and 60 < one["pressure"].values[0] < 200
    assert len(engine.predict_features(np.stack([means, means, means]))) == 3
    with pytest.raises(FeatureError, match=r"rows have 11 features, the model takes 12 \(age, bmi, .*in that order"):
        engine.predict_features(means[:-1])
    holed = means.copy()
    holed[3] = np.nan
    with pytest.raises(FeatureError, match=r"row 0, feature 'glucose' is nan: expected a finite number"):
        engine.predict_features(holed)
    with pytest.raises(FeatureError, match="rows have 11 features"):
        engine.run(means[None, :-1])
    with pytest.raises(FrameError, match="takes feature vectors"):
        engine.predict(np.zeros((8, 8, 3), np.uint8))


def test_int8_and_frame_sizes_are_refused_for_vector_models(vector_run, tmp_path):
    checkpoint = load_checkpoint(vector_run.best_checkpoint)
    with pytest.raises(ConfigError, match="precision 'int8' is not available for a vector model"):
        export_onnx(checkpoint, tmp_path / "m.onnx", ExportOptions(precision="int8"))
    with pytest.raises(ConfigError, match="for image models"):
        export_onnx(checkpoint, tmp_path / "m.onnx", ExportOptions(input_size=(64, 64)))


def test_fp16_export_runs(vector_run, tmp_path):
    checkpoint = load_checkpoint(vector_run.best_checkpoint)
    result = export_onnx(checkpoint, tmp_path / "half.onnx", ExportOptions(precision="fp16"))
    engine = Engine(result.path, device="cpu")
    assert engine.metadata.precision == "fp16" and len(engine.predict_features(np.asarray(engine.features.mean))) == 1


def test_info_predict_and_bench_commands(vector_model, vector_table, tmp_path):
    from edgemtl.commands.bench import run_bench
    from edgemtl.commands.info import describe_model
    from edgemtl.commands.predict import PredictRequest, run_predict

    info = "\n".join(describe_model(vector_model))
    assert "12 features" in info and "waist_cm" in info and "mean" in info

    summary = run_predict(PredictRequest(vector_table, vector_model, tmp_path / "jsonl"))
    lines = summary.predictions_file.read_text().splitlines()
    assert summary.frames == len(lines) == 360 and json.loads(lines[0])["row"] == 2
    summary = run_predict(PredictRequest(vector_table, vector_model, tmp_path / "csv", format="csv"))
    header = summary.predictions_file.read_text().splitlines()[0].split(",")
    assert header[:3] == ["row", "risk.label", "risk.confidence"] and "pressure.values.systolic" in header

    short = tmp_path / "short.csv"
    short.write_text("\n".join(",".join(line.split(",")[1:]) for line in vector_table.read_text().splitlines()))
    with pytest.raises(DataError, match=r"no feature column 'age'.*the model takes 12 features \(age, bmi"):
        run_predict(PredictRequest(short, vector_model, tmp_path / "short"))

    report = run_bench([vector_model], devices=("cpu",), runs=20, pipeline_frames=0)
    measures = [row.measure for row in report.rows]
    assert measures == ["engine only, 12 features", "predict_features (checks + results)"]
    assert all(row.p50_ms > 0 for row in report.rows)


def test_eval_scores_a_vector_checkpoint_and_its_export_on_the_same_rows(vector_run, vector_model, tmp_path):
    from edgemtl.commands.evaluate import EvalRequest, run_eval

    checkpoint = run_eval(EvalRequest(vector_run.best_checkpoint, device="cpu", out=tmp_path / "pt"))
    assert checkpoint.split == "the run's validation split" and checkpoint.frames == 60
    exported = run_eval(
        EvalRequest(vector_model, data=load_checkpoint(vector_run.best_checkpoint).validation["data"], split="val",
                    device="cpu", out=tmp_path / "onnx")
    )  # fmt: skip
    for task in ("risk", "pressure", "conditions"):
        for metric, value in checkpoint.metrics[task].items():
            if metric != "loss" and isinstance(value, float):
                assert exported.metrics[task][metric] == pytest.approx(value, abs=1e-6), (task, metric)
