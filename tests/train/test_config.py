import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgemtl.cli import main
from edgemtl.data.augment import AugmentConfig
from edgemtl.data.splits import SYNTHETIC_TRAIN_SCENES, SYNTHETIC_VAL_SCENES
from edgemtl.errors import ConfigError
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind
from edgemtl.train.config import RunConfig, load_config, save_config
from edgemtl.train.overrides import check_resumable

FULL = """
seed = 7
device = "cpu"

[model]
preset = "small"
input_size = [96, 160]
skips = false

[data]
train = "datasets/nav"
val = "datasets/nav_val"
train_size = 100

[train]
epochs = 3
batch_size = 8
learning_rate = 1e-3
weighting = "fixed"

[augment]
flip = 0.5
scale = [0.8, 1.2]

[[tasks]]
name = "scene"
kind = "classification"
classes = ["left", "straight", "right", "blocked"]
weight = 2
extra = { scale_invariant = true }

[[tasks]]
name = "segmentation"
kind = "segmentation"
classes = ["background", "path"]
"""


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_file_is_read_into_every_section(tmp_path):
    config = load_config(write(tmp_path, FULL))
    train = config.train
    assert (train.seed, train.device, train.preset, train.input_size, train.skips) == (
        7,
        "cpu",
        "small",
        (96, 160),
        False,
    )
    assert (train.epochs, train.batch_size, train.learning_rate, train.weight_decay) == (3, 8, 1e-3, 1e-4)
    assert (config.data.train, config.data.val, config.data.train_size) == ("datasets/nav", "datasets/nav_val", 100)
    assert config.augment == AugmentConfig(flip=0.5, scale=(0.8, 1.2))
    assert [t.name for t in config.tasks] == ["scene", "segmentation"]
    assert config.tasks[0].kind is TaskKind.CLASSIFICATION and config.tasks[0].weight == 2.0


def test_the_saved_config_reads_back_as_the_same_config(tmp_path):
    config = load_config(write(tmp_path, FULL))
    saved = save_config(config, tmp_path / "config.json")
    assert load_config(saved) == config
    assert json.loads(saved.read_text()) == config.to_dict()


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == RunConfig()


def test_a_square_input_size_may_be_one_number(tmp_path):
    assert load_config(write(tmp_path, "[model]\ninput_size = 64\n")).train.input_size == (64, 64)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nepoch = 3\n", "unknown key 'epoch' in [train]: did you mean 'epochs'?"),
        ("[modle]\npreset = 'nano'\n", "unknown key 'modle' in the top level: did you mean 'model'?"),
        (
            "[model]\npreset = 'nano'\ninputsize = 64\n",
            "unknown key 'inputsize' in [model]: did you mean 'input_size'?",
        ),
        ("[data]\nval_data = 'x'\n", "unknown key 'val_data' in [data]: did you mean 'val'?"),
        ("[augment]\nflips = 0.5\n", "unknown key 'flips' in [augment]: did you mean 'flip'?"),
        (
            "[[tasks]]\nname = 'a'\nkind = 'regression'\nwieght = 1\n",
            "unknown key 'wieght' in [[tasks]]: did you mean 'weight'?",
        ),
        ("[train]\nzzz = 1\n", "unknown key 'zzz' in [train]: expected one of epochs, batch_size"),
    ],
)
def test_unknown_keys_name_the_closest_valid_one(tmp_path, text, message):
    with pytest.raises(ConfigError, match=r"run\.toml: ") as error:
        load_config(write(tmp_path, text))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nepochs = 'ten'\n", "epochs in [train] is 'ten': expected a positive integer"),
        ("[train]\nbatch_size = 0\n", "expected a positive integer"),
        ("[train]\nlearning_rate = 0\n", "expected a positive number"),
        ("[train]\nwarmup_fraction = 2\n", "expected a fraction between 0 and 1"),
        ("[train]\namp = 1\n", "expected true or false"),
        ("[model]\ninput_size = [64]\n", "expected a positive integer or [height, width]"),
        ("[model]\nmean = [1, 2]\n", "expected a list of 3 numbers"),
        ("device = 3\n", "expected a non-empty string"),
        ("model = 3\n", "[model] must be a table"),
        ("[[tasks]]\nname = 'scene'\nkind = 'bogus'\n", "unknown task kind 'bogus'"),
        ("[augment]\nflip = 2\n", "augment flip 2 is not usable"),
        ("[train\nepochs = 3\n", "is not valid TOML"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml does not exist"):
        load_config(tmp_path / "nope.toml")


def test_only_epochs_and_device_may_change_on_resume():
    saved = RunConfig(tasks=NAVIGATION_TASKS).to_dict()
    longer = RunConfig(tasks=NAVIGATION_TASKS)
    longer.train.epochs, longer.train.device = 30, "cuda"
    check_resumable(saved, longer.to_dict(), "runs/x")
    other = RunConfig(tasks=NAVIGATION_TASKS[:1], augment=AugmentConfig(flip=0.5))
    other.train.learning_rate = 0.1
    with pytest.raises(ConfigError) as error:
        check_resumable(saved, other.to_dict(), "runs/x")
    message = str(error.value)
    assert message.startswith("cannot resume runs/x: the configuration differs from the saved one in augment.flip")
    assert "tasks" in message and "train.learning_rate (saved 0.004, now 0.1)" in message


def test_the_command_line_defaults_are_the_config_defaults():
    """The CLI applies only flags given on the command line, so its shown defaults must be the real ones:
    it reads them from the config when it parses (nothing loads PyTorch before a command needs it)."""
    defaults = RunConfig()
    command = main.commands["train"]
    command.make_context("train", [])
    options = {p.name: p.default for p in command.params}
    assert options["epochs"] == defaults.train.epochs and options["batch_size"] == defaults.train.batch_size
    assert options["lr"] == defaults.train.learning_rate and options["preset"] == defaults.train.preset
    assert (options["weighting"], options["skips"], options["seed"]) == (
        defaults.train.weighting,
        defaults.train.skips,
        defaults.train.seed,
    )
    assert (options["data"], options["train_size"]) == (defaults.data.train, defaults.data.train_size)
    assert (defaults.data.train_size, defaults.data.val_size) == (SYNTHETIC_TRAIN_SCENES, SYNTHETIC_VAL_SCENES)


def test_the_cli_reports_a_bad_config_in_one_line(tmp_path):
    path = write(tmp_path, "[train]\nepoch = 3\n")
    result = CliRunner().invoke(main, ["train", "--config", str(path)])
    assert result.exit_code == 1
    assert result.output.strip().endswith("unknown key 'epoch' in [train]: did you mean 'epochs'?")
    assert "Traceback" not in result.output


def test_the_example_config_names_every_kind_the_synthetic_scenes_label():
    from edgemtl.data.synthetic import labels_all

    run = load_config(Path(__file__).parents[2] / "configs" / "all_kinds.toml")
    assert {t.kind for t in run.tasks} == set(TaskKind)
    assert labels_all(run.tasks) and run.augment.enabled and run.train.weighting == "uncertainty"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('[train]\nweighting = "gradnrom"', r"unknown weighting 'gradnrom'.*did you mean 'gradnorm'\?"),
        ('device = "gpu"', r"unknown device 'gpu': expected one of auto, cpu, cuda"),
        ('[model]\npreset = "tiny"', r"unknown preset 'tiny'"),
    ],
)
def test_unknown_names_are_refused_before_any_data_is_loaded(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, setting))
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and not (tmp_path / "r").exists()


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("# caméra\n[train]\nepochs = 2\n".encode("latin-1"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "not UTF-8" in message and "0xe9" in message and "\n" not in message
