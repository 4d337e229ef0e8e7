"""Encoders from timm (`encoder = "timm:<name>"`): an ImageNet backbone where a pretrained start matters.

timm's `features_only` models return one feature map per reduction, as the built-in encoder does, and
report their channels and reductions (`feature_info`); the decoder and heads are sized from those. timm
is an optional dependency, imported only when a timm encoder is asked for. It imports torchvision, which
imports only beside the torch build it was made for: `INSTALL_HINT` names the pair the README installs.
Weights come from timm's hub (`pretrained`, on a machine that can reach it) or a local file (`weights`).
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from edgemtl.errors import ConfigError

PREFIX = "timm:"
#: The torch + torchvision pair this project tests timm with (the README's); `edgemtl[timm]` alone does not
#: import beside the CPU build of torch 2.13.0 the README's first command installs (it has no torchvision).
TIMM_PAIR = "torch==2.14.1 torchvision==0.29.1"
INSTALL_HINT = (
    f'install timm with a torchvision built for your torch, e.g. `pip install {TIMM_PAIR} -e ".[dev,timm]"` '
    "in a checkout (the pair the README names)"
)


def timm_name(encoder: str) -> str | None:
    """The timm model name of an encoder setting, or None for the preset's own encoder ("")."""
    if not encoder:
        return None
    if not encoder.startswith(PREFIX) or not encoder[len(PREFIX) :]:
        raise ConfigError(f'unknown encoder {encoder!r}: expected "" (the preset\'s own) or "timm:<model name>"')
    return encoder[len(PREFIX) :]


def _timm() -> Any:
    try:
        import timm
    except Exception as exc:  # ImportError, or torchvision's own import failing beside a foreign torch build
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"a timm encoder needs the timm package, which does not import here ({reason}): {INSTALL_HINT}"
        ) from None
    return timm


def check_timm_name(name: str) -> None:
    """A ConfigError naming the closest valid timm models when `name` is not one of timm's."""
    timm = _timm()
    known = timm.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise ConfigError(f"unknown timm model {name!r}: {hint}")


class TimmEncoder(nn.Module):
    """A timm `features_only` model behind the built-in encoder's interface: a list of feature maps,
    finest first, with `channels`, `reductions` and `stride`."""

    def __init__(self, name: str, pretrained: bool = False, weights: str | Path | None = None) -> None:
        super().__init__()
        check_timm_name(name)
        self.name = name
        self.model = _create(name, pretrained)
        info = self.model.feature_info
        self.channels: tuple[int, ...] = tuple(int(c) for c in info.channels())
        self.reductions: tuple[int, ...] = tuple(int(r) for r in info.reduction())
        if weights is not None:
            load_encoder_weights(self.model, Path(weights), name)

    @property
    def stride(self) -> int:
        """Total downsampling: input height and width must be multiples of it."""
        return self.reductions[-1]

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.model(x))


def _create(name: str, pretrained: bool) -> nn.Module:
    timm = _timm()
    try:
        return timm.create_model(name, pretrained=pretrained, features_only=True)
    except RuntimeError as exc:
        if "features_only" in str(exc) or "feature" in str(exc).lower():
            raise ConfigError(
                f"timm model {name!r} has no features_only form ({exc}): pick a convolutional one, "
                "e.g. mobilenetv3_large_100, efficientnet_lite0, regnetx_002 or resnet18"
            ) from None
        if not pretrained:
            raise
        raise ConfigError(_unreachable(name, exc)) from None
    except Exception as exc:  # the hub unreachable: huggingface_hub, requests and OSError types
        if not pretrained:
            raise
        raise ConfigError(_unreachable(name, exc)) from None


def _unreachable(name: str, exc: Exception) -> str:
    """How to get the weights onto a machine that cannot reach timm's hub."""
    source = _hub_id(name)
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot fetch pretrained weights for timm model {name!r}{offline}: {reason}; on a machine with "
        f"network, save them with `python -c \"import timm, torch; torch.save(timm.create_model('{name}', "
        f"pretrained=True).state_dict(), '{name}.pth')\"`{source}, copy the file here and set "
        f'weights = "{name}.pth" (and pretrained = false)'
    )


def _hub_id(name: str) -> str:
    try:
        cfg = _timm().models.get_pretrained_cfg(name)
    except Exception:  # an older timm, or a model without a default configuration
        return ""
    hub = getattr(cfg, "hf_hub_id", None)
    return f" (or download it from https://huggingface.co/{hub})" if hub else ""


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a .safetensors file or a PyTorch file (loaded with weights_only: files are untrusted);
    a dict holding it under "state_dict" or "model" (common training checkpoints) is unwrapped."""
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist: expected a state dict (.pth, .pt or .safetensors)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"weights file {path} cannot be read ({type(exc).__name__}): expected a state dict "
            "(.pth, .pt or .safetensors)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not all(isinstance(v, Tensor) for v in data.values()):
        raise ConfigError(f"weights file {path} holds no state dict (name → tensor)")
    return data


def load_encoder_weights(model: nn.Module, path: Path, name: str) -> None:
    """Load a timm state dict into the features_only model; the classifier's keys, which the encoder lacks,
    are skipped. Any encoder key missing from the file, or of another shape, is a one-line ConfigError."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = [f"{len(missing)} encoder keys missing, first {', '.join(missing[:3])}"] if missing else []
    problems += [f"{len(wrong)} of another shape, first {'; '.join(wrong[:2])}"] if wrong else []
    if problems:
        raise ConfigError(f"weights file {path} does not match timm model {name!r}: {'; '.join(problems)}")
    model.load_state_dict({k: state[k] for k in own})


@functools.lru_cache(maxsize=16)
def timm_feature_info(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channels, reductions) of a timm model's features, for checks made before a model is built."""
    encoder = TimmEncoder(name)
    return encoder.channels, encoder.reductions
