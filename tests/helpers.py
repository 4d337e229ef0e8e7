"""What many tests share, in one place: the tiny model size, the files they feed to edgemtl (images, videos
used as cameras, a foreign ONNX model), running the CLI, and the checks of its one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgemtl.cli import main

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


# --- label files as labelling tools write them (issue 12: each writer names where its format is specified) --

FIXTURE_SIZE = (32, 32)  # (H, W) of the importers' fixture frames
ROAD_RGB, CAR_RGB = (128, 64, 128), (0, 0, 142)  # Cityscapes' colours for road and car


def fixture_scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    """A BGR frame and its class ids (0 background, 1 road: the lower half, 2 car: a square moving with i)."""
    ids = np.zeros(FIXTURE_SIZE, np.uint8)
    ids[16:] = 1
    x = 2 + 3 * (i % 8)
    ids[10:20, x : x + 8] = 2
    rgb = np.array([(90, 150, 220), ROAD_RGB, CAR_RGB], np.uint8)[ids]
    noise = np.random.default_rng(i).integers(0, 20, (*FIXTURE_SIZE, 3), dtype=np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1] + noise), ids


def _car_box(i: int) -> tuple[int, int, int, int]:
    x = 2 + 3 * (i % 8)
    return x, 10, x + 8, 20  # x0, y0, x1, y1 (exclusive)


def write_cvat_masks(root: Path, count: int, labelmap: bool = True) -> Path:
    """CVAT "Segmentation mask 1.1" (docs.cvat.ai, "Segmentation Mask" export: labelmap.txt, SegmentationClass/
    colour PNGs, ImageSets/Segmentation/default.txt, JPEGImages/); labelmap=False: Pascal VOC 2012 (palette PNGs
    of class ids, the devkit's ImageSets/Segmentation/train.txt and val.txt)."""
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"frame_{i:03d}" for i in range(count)]
    colours = np.array([(0, 0, 0), ROAD_RGB, CAR_RGB], np.uint8)
    for i, name in enumerate(names):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "JPEGImages" / f"{name}.png"), image)
        if labelmap:
            Image.fromarray(colours[ids]).save(root / "SegmentationClass" / f"{name}.png")
        else:  # VOC: indices 0 background, 7 car (VOC's order), 255 on the object's border
            voc = np.where(ids == 2, 7, 0).astype(np.uint8)
            voc[9, :] = 255
            mask = Image.frombytes("P", (voc.shape[1], voc.shape[0]), voc.tobytes())
            mask.putpalette([v for i in range(256) for v in (i, i, i)])
            mask.save(root / "SegmentationClass" / f"{name}.png")
    if labelmap:
        (root / "labelmap.txt").write_text(
            "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n"
        )
        (root / "ImageSets/Segmentation/default.txt").write_text("\n".join(names) + "\n")
    else:
        cut = count - max(1, count // 4)
        (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:cut]) + "\n")
        (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(names[cut:]) + "\n")
    return root


def write_coco(root: Path, count: int) -> Path:
    """COCO instances (cocodataset.org/#format-data): polygons for the road, an uncompressed RLE (iscrowd 1,
    column-major run lengths from 0) for each car, images/ beside annotations/instances_default.json (CVAT's
    COCO 1.0 export layout)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "images" / f"{i:04d}.jpg"), image)
        images.append({"id": i + 1, "file_name": f"{i:04d}.jpg", "width": 32, "height": 32})
        road = [[0, 16, 32, 16, 32, 32, 0, 32]]
        annotations.append(
            {
                "id": 2 * i + 1,
                "image_id": i + 1,
                "category_id": 3,
                "segmentation": road,
                "area": 512.0,
                "bbox": [0, 16, 32, 16],
                "iscrowd": 0,
            }
        )
        car = (ids == 2).astype(np.uint8).ravel(order="F")
        changes = np.flatnonzero(np.diff(np.concatenate([[0], car, [2]])))
        counts = np.diff(np.concatenate([[0], changes])).tolist()
        x0, y0, x1, y1 = _car_box(i)
        annotations.append(
            {
                "id": 2 * i + 2,
                "image_id": i + 1,
                "category_id": 7,
                "segmentation": {"counts": counts, "size": [32, 32]},
                "area": 80.0,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 1,
            }
        )
    categories = [{"id": 3, "name": "road", "supercategory": ""}, {"id": 7, "name": "car", "supercategory": ""}]
    document = {"info": {}, "licenses": [], "images": images, "annotations": annotations, "categories": categories}
    (root / "annotations" / "instances_default.json").write_text(json.dumps(document))
    return root


def write_labelme(root: Path, count: int) -> Path:
    """labelme JSON (github.com/wkentaro/labelme, labelme/_label_file.py; version 5): polygon and rectangle
    shapes, image-level flags, imagePath beside the file; labels.txt as in labelme's
    examples/semantic_segmentation (__ignore__, _background_, then the classes)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.txt").write_text("__ignore__\n_background_\nroad\ncar\n")
    for i in range(count):
        image, _ = fixture_scene(i)
        assert cv2.imwrite(str(root / f"{i:04d}.png"), image)
        x0, y0, x1, y1 = _car_box(i)
        shapes = [
            {
                "label": "road",
                "points": [[0, 16], [31, 16], [31, 31], [0, 31]],
                "group_id": None,
                "description": "",
                "shape_type": "polygon",
                "flags": {},
            },
            {
                "label": "car",
                "points": [[x0, y0], [x1 - 1, y1 - 1]],
                "group_id": None,
                "description": "",
                "shape_type": "rectangle",
                "flags": {},
            },
        ]
        document = {
            "version": "5.5.0",
            "flags": {"day": i % 2 == 0, "rain": i % 3 == 0},
            "shapes": shapes,
            "imagePath": f"{i:04d}.png",
            "imageData": None,
            "imageHeight": 32,
            "imageWidth": 32,
        }
        (root / f"{i:04d}.json").write_text(json.dumps(document))
    return root


def write_cityscapes(root: Path, count: int) -> Path:
    """Cityscapes gtFine (cityscapes-dataset.com; cityscapesScripts' labels.py ids: 7 road, 26 car, 0 unlabeled):
    gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png beside leftImg8bit/... ."""
    for i in range(count):
        split, city = ("val", "bonn") if i >= count - max(1, count // 4) else ("train", "aachen")
        name = f"{city}_{i // 2:06d}_{i:06d}"
        for folder in ("gtFine", "leftImg8bit"):
            (root / folder / split / city).mkdir(parents=True, exist_ok=True)
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"), image)
        label_ids = np.array([0, 7, 26], np.uint8)[ids]
        Image.fromarray(label_ids).save(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png")
    return root


def write_colour_masks(root: Path, count: int) -> Path:
    """Plain RGB colour masks: images/, masks/<stem>.png and colors.csv (class,r,g,b), edgemtl's documented
    colour layout (docs/data.md, "RGB colour masks")."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    (root / "colors.csv").write_text("class,r,g,b\nsky,0,0,0\nroad,128,64,128\ncar,0,0,142\n")
    colours = np.array([(0, 0, 0), ROAD_RGB, CAR_RGB], np.uint8)
    for i in range(count):
        image, ids = fixture_scene(i)
        assert cv2.imwrite(str(root / "images" / f"{i:04d}.png"), image)
        Image.fromarray(colours[ids]).save(root / "masks" / f"{i:04d}.png")
    return root


def write_image_labels(path: Path, names: list[str]) -> Path:
    """Image-level labels as a CSV (docs/data.md, "image-level labels"): a class, labels joined by ';', a
    number, and named values as pose.x / pose.y columns."""
    rows = ["image,scene,objects,speed,pose.x,pose.y"]
    for i, name in enumerate(names):
        objects = ["cone;box", "-", "box"][i % 3]
        rows.append(f"{name},{['left', 'right'][i % 2]},{objects},{i / 10:g},{i % 4},{-i % 3}")
    path.write_text("\n".join(rows) + "\n")
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
