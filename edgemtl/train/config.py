"""Training configuration files: one TOML (or JSON) file that describes a whole run.

    seed = 0
    device = "auto"                 # auto | cpu | cuda

    [model]
    input = "image"                 # or "vector": rows of named features (see docs/vectors.md)
    preset = "nano"
    input_size = [96, 160]          # height, width; or one number for a square; omit for the preset's
    skips = true
    encoder = "timm:regnetx_002"    # omit: the preset's own; a timm features_only model (docs/training.md: timm)
    pretrained = false              # timm's ImageNet weights, from its hub (a machine that can reach it)
    weights = "regnetx_002.pth"     # or: a local state dict of that timm model
    resize = "letterbox"            # how camera frames of another aspect fit: stretch | letterbox | crop

    [data]
    train = "synthetic"             # or a dataset folder
    val = "datasets/val"            # omit: synthetic, the split column's val rows, or 10% (whole groups) held out
    train_size = 3000               # synthetic scenes (ignored for a folder)
    val_size = 400
    allow_outside_paths = false     # true: labels.csv / manifests may name files outside their folder
    features = ["age", "bmi"]       # vector input: the table's feature columns, in input order
    missing_features = "error"      # vector input: "mean" fills an empty feature cell from the training split

    [train]
    epochs = 12
    batch_size = 32                 # per process under torchrun
    learning_rate = 4e-3
    weight_decay = 1e-4
    warmup_fraction = 0.05
    weighting = "fixed"
    amp = true
    freeze_encoder = false          # train the heads only
    encoder_lr_scale = 1.0          # the encoder's learning rate, as a fraction of learning_rate (e.g. 0.1)

    [augment]                       # edgemtl.data.augment.AugmentConfig; the defaults augment nothing
    flip = 0.5
    jitter = 0.2
    scale = [0.8, 1.2]

    [[tasks]]                       # omit: the navigation tasks for synthetic data, tasks.json of a folder
    name = "scene"
    kind = "classification"
    classes = ["left", "straight", "right", "blocked"]
    weight = 1.0
    extra = {loss = "focal", class_weights = "median_frequency"}   # edgemtl.kinds.imbalance

A task's loss and class weights can also be set without writing its table out (the data's own tasks):
`edgemtl.train.overrides.with_overrides(config, {"tasks.segmentation.loss": "dice_ce"})`, which
`edgemtl train --loss segmentation=dice_ce` does.

Every section and key is optional. A key edgemtl does not know is an error that suggests the closest
known one, because a typo that is silently ignored trains the wrong run for hours. The resolved
configuration (file, then command-line flags) is written to the run folder as config.json, which is
itself a valid configuration file, and into every checkpoint, so a run can be repeated or resumed.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from edgemtl.data.augment import AugmentConfig
from edgemtl.data.splits import SYNTHETIC, SYNTHETIC_TRAIN_SCENES, SYNTHETIC_VAL_SCENES
from edgemtl.data.table import TableColumns
from edgemtl.errors import ConfigError
from edgemtl.features import IMAGE
from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, check_input_size, get_preset, model_stride
from edgemtl.model.timm_encoder import TimmEncoder, check_timm_name, timm_name
from edgemtl.resize import DEFAULT_POLICY, check_policy
from edgemtl.tasks import TaskSpec, validate_tasks
from edgemtl.train.inputs import check_input_settings
from edgemtl.train.weighting import WEIGHTINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Which section of the file holds each TrainConfig field; fields not named here live in [train], so a
# field added to TrainConfig is configurable without touching this module.
_TOP_LEVEL = ("seed", "device")
_MODEL_KEYS = ("input", "preset", "input_size", "skips", "mean", "std", "encoder", "pretrained", "weights", "resize")
_SECTIONS = ("model", "data", "train", "augment", "tasks")
_TASK_KEYS = ("name", "kind", "classes", "weight", "extra")
_FLAG_NAMES = {"lr": "learning_rate", "val_data": "val", "data": "train", "warmup": "warmup_fraction"}  # CLI habits


@dataclass
class TrainConfig:
    """How to train: the model, the optimiser's schedule, the task weighting, where to run.

    The single source of every training default: the TOML file, the command line and the Python API all
    start from these values, and the CLI shows them in its help.
    """

    input: str = IMAGE  # image | vector (edgemtl.features): a conv encoder on frames, or an MLP on feature rows
    preset: str = "nano"  # of the input's presets: edgemtl.model.PRESETS, or VECTOR_PRESETS for vector input
    input_size: tuple[int, int] | None = None  # (height, width); None takes the preset's
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 4e-3  # small BN nets tolerate a high rate, which matters when epochs are few
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05  # of all steps: lets BN statistics settle before the full rate
    weighting: str = "fixed"
    skips: bool = True  # encoder skips into the segmentation decoder: sharper masks, ~5% more FLOPs
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision; only on CUDA (CPU autocast is slower than fp32 for small convs)
    plots: bool = True  # PNG curves, scores and predictions in the run folder each epoch (~0.5 s on a CPU)
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    encoder: str = ""  # "": the preset's own; "timm:<name>": a timm features_only backbone
    pretrained: bool = False  # a timm encoder's ImageNet weights from timm's hub
    weights: str | None = None  # a timm encoder's weights from a local state dict file
    freeze_encoder: bool = False  # train the decoder and heads only
    encoder_lr_scale: float = 1.0  # the encoder's learning rate as a fraction of learning_rate
    resize: str = DEFAULT_POLICY  # how frames of another size become the input: stretch | letterbox | crop

    def check_model(self) -> None:
        """The model's names and sizes, before any data is loaded: the preset, the timm model (with the
        closest valid names), a weights file that exists, the resize policy, an input size the stride takes."""
        get_preset(self.preset)
        check_policy(self.resize)
        name = timm_name(self.encoder)
        if name is None and (self.pretrained or self.weights):
            raise ConfigError('pretrained and weights need a timm encoder: set encoder = "timm:<name>"')
        if name is not None:
            check_timm_name(name)
        if self.pretrained and self.weights:
            raise ConfigError("pretrained = true and weights = PATH both give the encoder's weights: set one")
        if self.weights and not Path(self.weights).is_file():
            raise ConfigError(f"weights file {self.weights} does not exist: expected a state dict of {self.encoder}")
        if name is not None and (self.pretrained or self.weights):
            # Built once here: a file that does not match, or a hub out of reach, fails before data loads
            # (timm caches what it fetched, so the trainer's own build does not download it again).
            TimmEncoder(name, pretrained=self.pretrained, weights=self.weights)
        if not 0 < self.encoder_lr_scale <= 1000:
            raise ConfigError(f"encoder_lr_scale is {self.encoder_lr_scale}: expected a positive fraction, e.g. 0.1")
        check_input_size(self.resolved_input_size(), model_stride(self.preset, self.encoder))

    def resolved_input_size(self) -> tuple[int, int]:
        return tuple(self.input_size) if self.input_size else get_preset(self.preset).input_size


@dataclass
class DataConfig:
    """Where the frames come from: recorded so that `edgemtl train --resume` can load the same data again."""

    train: str = SYNTHETIC  # 'synthetic' or a dataset folder
    val: str | None = None  # a validation folder or manifest; None: synthetic, the val split, or 10% by group
    train_size: int = SYNTHETIC_TRAIN_SCENES
    val_size: int = SYNTHETIC_VAL_SCENES
    allow_outside_paths: bool = False  # a labels.csv or manifest may name files outside its dataset's folder
    features: tuple[str, ...] = ()  # vector input: the table's feature columns, in the model's input order
    missing_features: str = "error"  # vector input: "mean" fills empty feature cells from the training split

    def columns(self) -> TableColumns | None:
        """The table columns a vector run reads; None for image data."""
        return TableColumns(self.features, self.missing_features) if self.features else None

    def absolute(self) -> DataConfig:
        """Folders made absolute (a relative one is taken from the working directory), as a run records
        them: `--resume` started from another directory must find the same data."""

        def resolved(folder: str | None) -> str | None:
            return folder if folder in (None, SYNTHETIC) else str(Path(folder).resolve())

        return replace(self, train=resolved(self.train), val=resolved(self.val))


@dataclass
class RunConfig:
    """Everything a training run was given: the trainer's settings, tasks, data source and augmentation."""

    train: TrainConfig = field(default_factory=TrainConfig)
    tasks: tuple[TaskSpec, ...] = ()  # empty: the data source's own tasks
    data: DataConfig | None = field(default_factory=DataConfig)  # None: data given in memory to `train()`
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        """Names are checked here, before any data is loaded or a run folder is made."""
        check_input_settings(self)
        check_policy(self.train.resize)
        timm_name(self.train.encoder)
        for name, value, allowed in (
            ("weighting", self.train.weighting, tuple(WEIGHTINGS)),
            ("device", self.train.device, ("auto", "cpu", "cuda")),
        ):
            if value not in allowed:
                close = difflib.get_close_matches(str(value), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"unknown {name} {value!r}: expected one of {', '.join(allowed)}{hint}")
        self.augment.check_tasks(self.tasks)

    def to_dict(self) -> dict[str, Any]:
        """The file layout, as plain JSON-able values; `from_dict` reads it back."""
        values = asdict(self.train)
        values["input_size"] = list(values["input_size"]) if values["input_size"] else None
        values["mean"], values["std"] = list(values["mean"]), list(values["std"])
        result: dict[str, Any] = {key: values.pop(key) for key in _TOP_LEVEL}
        result["model"] = {key: values.pop(key) for key in _MODEL_KEYS}
        result["train"] = values
        if self.data is not None:
            result["data"] = {**asdict(self.data), "features": list(self.data.features)}
        result["augment"] = {**asdict(self.augment), "scale": list(self.augment.scale)}
        result["tasks"] = [t.to_dict() for t in self.tasks]
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Validate a parsed file: unknown keys and values of the wrong type are ConfigErrors naming them."""
        _check_keys(data, (*_TOP_LEVEL, *_SECTIONS), "the top level", source)
        model = _section(data, "model", source)
        train = _section(data, "train", source)
        train_keys = [f.name for f in fields(TrainConfig) if f.name not in (*_TOP_LEVEL, *_MODEL_KEYS)]
        _check_keys(model, _MODEL_KEYS, "[model]", source)
        _check_keys(train, train_keys, "[train]", source)
        settings = {key: data[key] for key in _TOP_LEVEL if key in data} | dict(model) | dict(train)
        defaults = TrainConfig()
        for name, value in settings.items():
            section = "[model]" if name in _MODEL_KEYS else "[train]" if name in train_keys else "the top level"
            settings[name] = _typed(name, value, getattr(defaults, name), section, source)

        data_section = _section(data, "data", source)
        _check_keys(data_section, [f.name for f in fields(DataConfig)], "[data]", source)
        data_defaults = DataConfig()
        data_config = DataConfig(
            **{
                name: _typed(name, value, getattr(data_defaults, name), "[data]", source)
                for name, value in data_section.items()
            }
        )
        tasks = data.get("tasks", [])
        if not isinstance(tasks, list) or not all(isinstance(t, Mapping) for t in tasks):
            raise ConfigError(f"{source}: tasks must be a list of task tables ([[tasks]]), got {tasks!r}")
        for task in tasks:
            _check_keys(task, _TASK_KEYS, "[[tasks]]", source)
        augment = _section(data, "augment", source)
        _check_keys(augment, [f.name for f in fields(AugmentConfig)], "[augment]", source)
        try:
            return cls(
                train=TrainConfig(**settings),
                tasks=validate_tasks(TaskSpec.from_dict(dict(t)) for t in tasks) if tasks else (),
                data=data_config,
                augment=AugmentConfig(**augment),
            )
        except ConfigError as exc:  # a task or augmentation setting edgemtl cannot use: say which file
            raise ConfigError(f"{source}: {exc}") from None


def load_config(path: Path | str) -> RunConfig:
    """A run configuration from a .toml file, or from a .json one (such as a run folder's config.json)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: expected a .toml (or .json) training config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start}): "
            "save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds {type(data).__name__}: expected a table of settings")
    return RunConfig.from_dict(data, str(path))


def save_config(config: RunConfig, path: Path) -> Path:
    """Write the resolved configuration as JSON: readable by `load_config`, and by anything without TOML."""
    path = Path(path)
    path.write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def _section(data: Mapping[str, Any], name: str, source: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: [{name}] must be a table of settings, got {section!r}")
    return section


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...] | list[str], where: str, source: str) -> None:
    for key in data:
        if key not in known:
            close = [_FLAG_NAMES[key]] if _FLAG_NAMES.get(key) in known else difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(known)}"
            raise ConfigError(f"{source}: unknown key {key!r} in {where}: {hint}")


def _typed(name: str, value: Any, default: Any, where: str, source: str) -> Any:
    """Check a value against the type of the field's default: the file is user input, not trusted code."""
    problem = f"{source}: {name} in {where} is {value!r}"
    if name == "input_size":
        if value is None:
            return None
        size = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            not isinstance(size, list | tuple)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ConfigError(f"{problem}: expected a positive integer or [height, width]")
        return (size[0], size[1])
    if name == "features":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{problem}: expected a list of column names")
        return tuple(v.strip() for v in value)
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(default) or not all(_is_number(v) for v in value):
            raise ConfigError(f"{problem}: expected a list of {len(default)} numbers")
        return tuple(float(v) for v in value)
    if value is None and name in ("val", "weights"):
        return None
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{problem}: expected true or false")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and name != "seed"):
            raise ConfigError(f"{problem}: expected {'an integer' if name == 'seed' else 'a positive integer'}")
    elif isinstance(default, float):
        if name == "learning_rate" and not (_is_number(value) and value > 0):
            raise ConfigError(f"{problem}: expected a positive number")
        if name == "warmup_fraction" and not (_is_number(value) and 0 <= value <= 1):
            raise ConfigError(f"{problem}: expected a fraction between 0 and 1")
        if not (_is_number(value) and value >= 0):
            raise ConfigError(f"{problem}: expected a non-negative number")
        value = float(value)
    elif name == "encoder" and isinstance(value, str):  # "" is the preset's own encoder
        pass
    elif not isinstance(value, str) or not value:  # string fields, and data.val whose default is None
        raise ConfigError(f"{problem}: expected a non-empty string")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
