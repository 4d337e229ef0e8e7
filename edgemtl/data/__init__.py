"""Datasets: procedural navigation scenes, the on-disk folder format and manifests, augmentation. No PyTorch."""

from edgemtl.data.augment import AugmentConfig, augment_batch
from edgemtl.data.dataset import ArrayDataset
from edgemtl.data.folder import load_dataset, load_folder, load_frames, read_tasks, write_dataset
from edgemtl.data.manifest import load_manifest
from edgemtl.data.masks import read_mask, write_mask
from edgemtl.data.splits import SPLITS, dataset_tasks, open_dataset, split_seed, training_sets
from edgemtl.data.synthetic import (
    Obstacle,
    SceneParams,
    drive_sequence,
    make_dataset,
    render_scene,
    sample_scene_params,
    scene_label,
)
from edgemtl.data.table import TableColumns, read_table, write_table
from edgemtl.data.vectors import VectorDataset

__all__ = [
    "SPLITS",
    "ArrayDataset",
    "AugmentConfig",
    "Obstacle",
    "SceneParams",
    "TableColumns",
    "VectorDataset",
    "augment_batch",
    "dataset_tasks",
    "drive_sequence",
    "load_dataset",
    "load_folder",
    "load_frames",
    "load_manifest",
    "make_dataset",
    "open_dataset",
    "read_mask",
    "read_table",
    "read_tasks",
    "render_scene",
    "sample_scene_params",
    "scene_label",
    "split_seed",
    "training_sets",
    "write_dataset",
    "write_mask",
    "write_table",
]
