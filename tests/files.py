"""Small files the tests feed to edgemtl: images, videos used as cameras, a foreign ONNX model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_images(folder: Path, count: int, size: tuple[int, int] = (24, 40), prefix: str = "img") -> list[np.ndarray]:
    """`count` distinct PNGs named <prefix>_<i>.png; returns the images as written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    images = []
    for i in range(count):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{prefix}_{i}.png"), image)
        images.append(image)
    return images


def write_video(path: Path, count: int, size: tuple[int, int] = (40, 48), fps: float = 10.0) -> Path:
    """An mp4 of `count` flat frames getting brighter, so frame order can be checked."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    assert writer.isOpened()
    for i in range(count):
        writer.write(np.full((*size, 3), 40 * i % 256, np.uint8))
    writer.release()
    return path


def write_foreign_onnx(path: Path) -> Path:
    """A valid ONNX model that edgemtl did not write: one Identity node, no edgemtl metadata."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
