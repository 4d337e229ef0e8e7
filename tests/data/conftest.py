"""The dataset the folder and manifest tests share: six generated scenes, and a folder written from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemtl.data import ArrayDataset, make_dataset, write_dataset


@pytest.fixture(scope="module")
def dataset() -> ArrayDataset:
    return make_dataset(6, (32, 48), seed=0)


@pytest.fixture
def root(tmp_path: Path, dataset: ArrayDataset) -> Path:
    return write_dataset(tmp_path / "set", dataset)
