"""A plain folder of images, labelled only by a labels file (`--labels`): a classification, multilabel or
regression dataset without masks.

    SRC/                 or SRC/images/
      0001.jpg ...
"""

from __future__ import annotations

from pathlib import Path

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.files import image_files


def import_images(src: Path) -> Source:
    """Every image of SRC (or SRC/images); their labels come from the labels file joined onto them."""
    folder = src / "images" if (src / "images").is_dir() else src
    return Source(None, {}, (SourceSample(image.stem, image) for image in image_files(folder)))
