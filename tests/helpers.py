"""What many tests share, in one place: the tiny model size, the files they feed to edgemtl (images, videos
used as cameras, a foreign ONNX model), running the CLI, and the checks of its one-line errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgemtl.cli import main

TINY_SIZE = (32, 32)  # the session model's input: seconds to train on a 2-core CPU


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


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code ≠ 0, and stderr is exactly one `Error: ...` line naming what it must."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(error.value)
    assert message and "\n" not in message, f"not one line: {message!r}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def count_frames(path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def write_mjpeg_avi(path: Path, count: int, size: tuple[int, int] = (40, 48), fps: float = 50.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size[1], size[0]))
    for i in range(count):
        writer.write(np.full((*size, 3), 8 * i % 256, np.uint8))
    writer.release()
    return path


def truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def assert_png(path: Path) -> tuple[int, int]:
    """A complete, decodable PNG; returns its (width, height)."""
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes every byte: a truncated file fails here
        return image.size
