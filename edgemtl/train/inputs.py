"""Which settings belong to which input kind, checked once for a whole run configuration.

A configuration is either an image run (a frame size, normalization, augmentation, images or synthetic
scenes) or a vector run (feature columns of a CSV table, an MLP preset). A setting of the other kind is an
error naming the key and the fix, because a silently ignored `input_size` on a vector run (or `features`
on an image run) means the file says something the run does not do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgemtl.data.splits import SYNTHETIC
from edgemtl.data.vectors import VectorDataset
from edgemtl.errors import ConfigError, DataError
from edgemtl.features import (
    VECTOR,
    FeatureSpec,
    check_feature_names,
    check_input_kind,
    check_missing_policy,
    refuse_pixel_tasks,
)
from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, get_preset, get_vector_preset

if TYPE_CHECKING:
    from edgemtl.data import ArrayDataset
    from edgemtl.tasks import TaskSpec
    from edgemtl.train.config import RunConfig, TrainConfig


def check_input_settings(run: RunConfig) -> None:
    """The preset of the run's input kind, and no setting of the other kind (ConfigError naming it)."""
    train, data = run.train, run.data
    kind = check_input_kind(train.input)
    if data is not None:
        check_missing_policy(data.missing_features)
    if kind != VECTOR:
        get_preset(train.preset)
        if data is not None and (data.features or data.missing_features != "error"):
            key = "features" if data.features else "missing_features"
            raise ConfigError(
                f"[data] {key} is for vector input, but [model] input is 'image': set [model] input = 'vector' "
                f"for a table of features, or remove {key}"
            )
        return
    get_vector_preset(train.preset)
    image_only = {
        "[model] input_size": train.input_size is not None,
        "[model] mean": tuple(train.mean) != DEFAULT_MEAN,
        "[model] std": tuple(train.std) != DEFAULT_STD,
        "[augment]": run.augment.enabled,
    }
    for key, present in image_only.items():
        if present:
            raise ConfigError(
                f"{key} is for image input, but [model] input is 'vector' (standardized by the training split's "
                f"statistics, never augmented): remove {key}, or set [model] input = 'image'"
            )
    if data is not None and not data.features:
        raise ConfigError(
            "[model] input is 'vector' but [data] features names no columns: list the table's feature columns, "
            'e.g. features = ["age", "bmi"]'
        )
    if data is not None:
        check_feature_names(data.features, "[data] features")
    if data is not None and data.train == SYNTHETIC:
        raise ConfigError(
            "[model] input is 'vector' but [data] train is 'synthetic' (camera scenes): give a CSV table, "
            "e.g. train = 'table.csv' (`edgemtl demo --kind vector` writes one)"
        )
    refuse_pixel_tasks(run.tasks)


def run_features(config: TrainConfig, train_data: ArrayDataset, val_data: ArrayDataset) -> FeatureSpec | None:
    """A vector run's features and their standardization (the training split's); None for an image run.

    The data must be of the configuration's input kind, and both sets must have the same feature columns.
    """
    vector = config.input == VECTOR
    for name, data in (("training", train_data), ("validation", val_data)):
        if isinstance(data, VectorDataset) != vector:
            have = "feature rows" if isinstance(data, VectorDataset) else "images"
            raise DataError(
                f"the {name} set holds {have} but the model input is {config.input!r}: load the data of the "
                "configuration's [model] input"
            )
    if not vector:
        return None
    if val_data.feature_names != train_data.feature_names:
        raise DataError(
            f"the validation rows have features {list(val_data.feature_names)}, the training rows "
            f"{list(train_data.feature_names)}: expected the same columns in the same order"
        )
    return train_data.statistics()


def check_data(sets: dict[str, ArrayDataset], tasks: tuple[TaskSpec, ...], input_size: tuple[int, int] | None) -> None:
    """Before any model is built: each set non-empty, with targets for the tasks, at the model's input size
    (None: feature rows, whose columns `run_features` checked)."""
    for name, data in sets.items():
        if len(data) == 0:
            raise DataError(f"the {name} set is empty: expected at least one sample")
        data.check_against(tasks)
        if input_size is not None and data.size != input_size:
            raise DataError(
                f"{name} images are {data.size[0]}x{data.size[1]} but the model input is "
                f"{input_size[0]}x{input_size[1]}: load the data at the model's input size"
            )
