"""Datasets: procedural navigation scenes and the on-disk folder format. No PyTorch here."""

from edgemtl.data.dataset import ArrayDataset

__all__ = ["ArrayDataset"]
