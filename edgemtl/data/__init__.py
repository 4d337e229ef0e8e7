"""Datasets: procedural navigation scenes and the on-disk folder format. No PyTorch here."""

from edgemtl.data.dataset import ArrayDataset
from edgemtl.data.folder import load_folder, load_frames, read_tasks, write_dataset
from edgemtl.data.masks import read_mask, write_mask
from edgemtl.data.synthetic import (
    Obstacle,
    SceneParams,
    drive_sequence,
    make_dataset,
    render_scene,
    sample_scene_params,
    scene_label,
)

__all__ = [
    "ArrayDataset",
    "Obstacle",
    "SceneParams",
    "drive_sequence",
    "load_folder",
    "load_frames",
    "make_dataset",
    "read_mask",
    "read_tasks",
    "render_scene",
    "sample_scene_params",
    "scene_label",
    "write_dataset",
    "write_mask",
]
