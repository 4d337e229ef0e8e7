"""Vector-input configurations: the file format, and one clear error for each setting of the wrong input kind."""

from __future__ import annotations

import pytest

from edgemtl.errors import ConfigError
from edgemtl.train.config import RunConfig, load_config

TASK = '[[tasks]]\nname = "risk"\nkind = "classification"\nclasses = ["low", "high"]\n'


def config(tmp_path, text: str):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return load_config(path)


def test_a_vector_config_reads_features_policy_and_preset(tmp_path):
    run = config(
        tmp_path,
        '[model]\ninput = "vector"\npreset = "small"\n[data]\ntrain = "t.csv"\nfeatures = ["age", "bmi"]\n'
        'missing_features = "mean"\n' + TASK,
    )
    assert run.train.input == "vector" and run.data.features == ("age", "bmi")
    assert run.data.columns().missing == "mean"
    assert RunConfig.from_dict(run.to_dict()) == run  # config.json round trip, as resume reads it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[model]\ninput = "vector"\ninput_size = 64\n', r"\[model\] input_size is for image input.*remove"),
        ('[model]\ninput = "vector"\nmean = [1, 2, 3]\n', r"\[model\] mean is for image input"),
        ('[model]\ninput = "vector"\n[augment]\nflip = 0.5\n', r"\[augment\] is for image input"),
        ('[data]\ntrain = "t.csv"\nfeatures = ["a"]\n', r"\[data\] features is for vector input.*input = 'vector'"),
        ('[model]\ninput = "vector"\n[data]\ntrain = "t.csv"\n', r"\[data\] features names no columns"),
        ('[model]\ninput = "vector"\n[data]\nfeatures = ["a"]\n', r"\[data\] train is 'synthetic'"),
        ('[model]\ninput = "vector"\npreset = "tiny"\n[data]\ntrain = "t.csv"\nfeatures = ["a"]\n', "vector preset"),
        ('[model]\ninput = "table"\n', r"unknown input 'table'"),
        ('[model]\ninput = "vector"\n[data]\ntrain = "t.csv"\nfeatures = ["a", "a"]\n', "more than once"),
    ],
    ids=["input_size", "mean", "augment", "features-on-image", "no-features", "synthetic", "preset", "kind", "twice"],
)
def test_a_config_mixing_image_and_vector_input_is_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as error:
        config(tmp_path, text + TASK)
    assert "\n" not in str(error.value)


def test_segmentation_in_a_vector_config_is_refused(tmp_path):
    text = '[model]\ninput = "vector"\n[data]\ntrain = "t.csv"\nfeatures = ["a"]\n'
    text += '[[tasks]]\nname = "ground"\nkind = "segmentation"\nclasses = ["free", "wall"]\n'
    with pytest.raises(ConfigError, match=r"task 'ground' is segmentation, which needs image input"):
        config(tmp_path, text)


def test_the_shipped_vector_config_loads_and_matches_the_demo():
    from pathlib import Path

    from edgemtl.data.synthetic.tabular import FEATURE_NAMES, TABULAR_TASKS

    run = load_config(Path(__file__).resolve().parents[2] / "configs" / "vector.toml")
    assert run.train.input == "vector" and run.data.features == FEATURE_NAMES and run.tasks == TABULAR_TASKS
