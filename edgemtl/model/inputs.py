"""The one place that knows a model's input kind: an image encoder or a vector trunk, and its preprocessing.

Training, checkpoints and export ask here, so each builds either kind of net with the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from edgemtl.features import FeatureSpec
from edgemtl.model.net import MultiTaskNet
from edgemtl.model.preprocess import Preprocess
from edgemtl.model.presets import create_model
from edgemtl.model.vector import Standardize, create_vector_model
from edgemtl.tasks import TaskSpec


def build_model(
    preset: str,
    tasks: Sequence[TaskSpec],
    *,
    skips: bool = True,
    features: FeatureSpec | None = None,
    **image: Any,
) -> MultiTaskNet:
    """The image net of an image preset (`image`: create_model's encoder, pretrained and weights), or (given
    `features`) the MLP of a vector preset."""
    if features is None:
        return create_model(preset, tasks, skips=skips, **image)
    return create_vector_model(preset, tasks, features.count)


def input_preprocess(mean: Sequence[float], std: Sequence[float], features: FeatureSpec | None = None) -> nn.Module:
    """What turns the graph's input into the net's: frame normalization, or feature standardization."""
    if features is None:
        return Preprocess(mean, std)
    return Standardize(features.mean, features.std)
