"""The command line with vector models: info, predict on a table, and the one-line errors of bad input."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error, invoke

pytestmark = pytest.mark.slow  # the session's vector model is trained once (tests/conftest.py)


def test_info_lists_every_feature_in_order(vector_model):
    result = invoke("info", vector_model)
    assert result.exit_code == 0 and "12 features" in result.output
    assert result.output.index(" age ") < result.output.index(" waist_cm ")


def test_predict_writes_one_line_per_row(vector_model, vector_table, tmp_path):
    result = invoke("predict", vector_table, "-m", vector_model, "-o", tmp_path / "out", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(vector_table.read_text().splitlines()) - 1
    assert set(json.loads(lines[0])) == {"row", "risk", "pressure", "conditions"}


def test_predict_on_a_table_lacking_a_feature_or_with_a_bad_cell_is_one_line(vector_model, vector_table, tmp_path):
    lines = vector_table.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(line.rsplit(",", 5)[0] + "," + line.rsplit(",", 4)[1] for line in lines[:3]))
    result = invoke("predict", short, "-m", vector_model, "-o", tmp_path / "a")
    assert_one_line_error(result, "no feature column 'waist_cm'", "the model takes 12 features")

    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], lines[1].replace(lines[1].split(",")[1], "tall", 1)]) + "\n")
    result = invoke("predict", bad, "-m", vector_model, "-o", tmp_path / "b")
    assert_one_line_error(result, "bad.csv line 2, feature column 'bmi' holds 'tall'")


def test_training_from_a_mixed_config_is_one_line(tmp_path, vector_table):
    config = tmp_path / "mixed.toml"
    config.write_text(
        f'[model]\ninput = "vector"\ninput_size = 64\n[data]\ntrain = "{vector_table}"\nfeatures = ["age"]\n'
    )
    result = invoke("train", "--config", config, "-o", tmp_path / "run")
    assert_one_line_error(result, "[model] input_size is for image input", "remove [model] input_size")
