"""What many tests share, in one place: the tiny model size and training config, the files they feed to edgemtl
(images, videos used as cameras, a foreign ONNX model), running the CLI, the checks of its one-line errors, and
a strict JSON parse. Label files as labelling tools write them are in tests/label_files.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgemtl.cli import main

if TYPE_CHECKING:  # the helpers stay light to import: training (and torch) loads when a test trains
    from edgemtl.data import ArrayDataset
    from edgemtl.tasks import TaskSpec
    from edgemtl.train import TrainConfig, TrainResult

TINY_SIZE = (32, 32)  # the session model's input: seconds to train on a 2-core CPU
# A config file for `edgemtl train --config` (format it with the epochs): synthetic frames at 32x32, a few
# seconds an epoch on a 2-core CPU, no plots.
TINY_RUN = """
device = "cpu"
[model]
input_size = 32
[data]
train_size = 16
val_size = 8
[train]
epochs = {epochs}
batch_size = 8
plots = false
"""


def train_split(
    config: TrainConfig,
    tasks: tuple[TaskSpec, ...],
    data: ArrayDataset,
    rows: tuple[int, int | None],
    folder: Path,
    log: Any = None,
) -> TrainResult:
    """`train` quietly on `data`'s first rows[0] scenes, validated on the scenes from there to rows[1] (None:
    the end); `log` gets the epoch lines when given."""
    from edgemtl.train import train

    split, end = rows
    validation = data.subset(slice(split, end))
    return train(config, tasks, data.subset(slice(0, split)), validation, folder, progress=False, log=log or _ignore)


def _ignore(_: str) -> None:
    pass


def strict_loads(text: str) -> Any:
    """json.loads as a strict reader (JavaScript, jq, Go) parses: a bare NaN or Infinity is an error, not a number."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


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


def write_foreign_onnx(path: Path, ir_version: int = 8) -> Path:
    """A valid ONNX model that edgemtl did not write: one Identity node, no edgemtl metadata (`ir_version` above
    what onnxruntime reads: a file from a newer exporter)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = ir_version
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


def default_signals() -> None:
    """`preexec_fn` for a child that must react to SIGINT and SIGTERM as a fresh program does, however the
    suite was started: a background job (`nohup pytest &`, some CI runners) ignores SIGINT, and a child
    inherits ignored signals across exec."""
    import signal

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def edgemtl_script() -> Path:
    """The `edgemtl` console script installed beside this interpreter."""
    import sys

    script = Path(sys.executable).with_name("edgemtl")
    assert script.exists(), "the edgemtl console script is installed beside the interpreter"
    return script


def popen_edgemtl(args: list[str], **options):
    """The console script as a child process with default signal dispositions, stdout and stderr piped."""
    import subprocess

    return subprocess.Popen(
        [str(edgemtl_script()), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
        **options,
    )


def doctor_metadata(source: Path, target: Path, changes: dict[str, str | None]) -> Path:
    """A copy of an export with `edgemtl.<key>` metadata values replaced (None: removed), as someone editing
    the file, or a tool copying metadata between files, would leave it."""
    import onnx

    model = onnx.load(str(source))
    props = {p.key: p.value for p in model.metadata_props}
    for key, value in changes.items():
        props.pop(f"edgemtl.{key}", None)
        if value is not None:
            props[f"edgemtl.{key}"] = value
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(target))
    return target


def copy_metadata(source: Path, target: Path) -> Path:
    """Give the ONNX file `target` the edgemtl metadata of the export `source` (a foreign graph in disguise)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    model = onnx.load(str(target))
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(target))
    return target


def write_external_data_onnx(path: Path, location: str) -> Path:
    """A valid ONNX file whose one weight lives in another file, named by `location` (e.g. ../secret.bin)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((1, 3), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "12")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "external", [x], [y], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())  # onnx.save would try to write the external data
    return path


def import_timm():
    """timm, or a skip saying why it did not import; under EDGEMTL_REQUIRE_TIMM=1 (CI's timm run) it must import."""
    if os.environ.get("EDGEMTL_REQUIRE_TIMM") == "1":
        import timm

        return timm
    return pytest.importorskip("timm", exc_type=ImportError)


def assert_same_dataset(a, b) -> None:
    """Two ArrayDatasets hold the same images and targets, dtypes included (NaN equals NaN)."""
    assert np.array_equal(a.images, b.images)
    assert a.targets.keys() == b.targets.keys()
    for name in a.targets:
        assert a.targets[name].dtype == b.targets[name].dtype
        assert np.array_equal(a.targets[name], b.targets[name], equal_nan=a.targets[name].dtype.kind == "f")


def rewrite_labels(root: Path, replace: str, by: str) -> None:
    """Edit a dataset folder's labels.csv by hand: the first `replace` becomes `by`."""
    labels = root / "labels.csv"
    labels.write_text(labels.read_text().replace(replace, by, 1))
