"""Where training runs and how it starts: the device, and the seeds that make a run repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch

from edgemtl.errors import DeviceError


def resolve_device(device: str) -> torch.device:
    """auto → CUDA when PyTorch sees a GPU; cuda without one is an error rather than a slow surprise."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but PyTorch sees no CUDA GPU: use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise DeviceError(
            f"unknown device {device!r} for PyTorch: expected auto, cpu or cuda (tensorrt and openvino run .onnx files)"
        )
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Python's, NumPy's and PyTorch's generators seeded alike; the returned one shuffles the batches."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
