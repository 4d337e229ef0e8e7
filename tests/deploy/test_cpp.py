"""The C++ recipe (export/cpp): built with CMake, run on an image, checked against the Python Engine.

It builds against the folder export/cpp/fetch_deps.sh prepares (ONNX Runtime headers and library),
found through EDGEMTL_ORT_ROOT (default build/onnxruntime), and the system's OpenCV. Without them the
test skips, unless EDGEMTL_REQUIRE_CPP=1: CI sets it, so a broken setup fails instead of hiding.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemtl.data.synthetic import OBSTACLES_TASK
from edgemtl.runtime import Engine
from edgemtl.tasks import NAVIGATION_TASKS, TaskKind
from tests.deploy.kit import detection_checkpoint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ORT_ROOT = Path(os.environ.get("EDGEMTL_ORT_ROOT", REPO / "build" / "onnxruntime"))

# `scene_probs: 0.1 0.2` or `segmentation_mask (48x64 pixels), share per class id: 0=0.25 3=0.75`;
# the metadata lines (`edgemtl.tasks: ...`) and a detection task's lines do not match.
OUTPUT_LINE = re.compile(r"^(\w+)(?: \(\d+x\d+ pixels\), share per class id)?: (.*)$")
# `obstacles (detection): 2 objects, ...`, then one line per object: `  cone (2) score 0.9 box 1.5 2 30.25 40`.
OBJECTS_LINE = re.compile(r"^(\w+) \(detection\): (\d+) objects")
OBJECT_LINE = re.compile(r"^  (.+) \((\d+)\) score (\S+) box (\S+) (\S+) (\S+) (\S+)$")


def missing(reason: str) -> None:
    if os.environ.get("EDGEMTL_REQUIRE_CPP") == "1":
        pytest.fail(f"{reason} (EDGEMTL_REQUIRE_CPP=1 requires the C++ build)")
    pytest.skip(f"{reason}: run `bash export/cpp/fetch_deps.sh` (or set EDGEMTL_ORT_ROOT)")


# Session scope, like exported_model: pytest sets up wider scopes first, and a skip should not train first.
@pytest.fixture(scope="session")
def cpp_program(tmp_path_factory) -> Path:
    if not (ORT_ROOT / "include" / "onnxruntime_cxx_api.h").is_file():
        missing(f"no ONNX Runtime headers in {ORT_ROOT}/include")
    for tool in ("cmake", os.environ.get("CXX", "c++")):
        if shutil.which(tool) is None:
            missing(f"no {tool} on PATH")
    build = tmp_path_factory.mktemp("cpp")
    configure = subprocess.run(
        ["cmake", "-S", REPO / "export" / "cpp", "-B", build, f"-DONNXRUNTIME_ROOT={ORT_ROOT}"],
        capture_output=True,
        text=True,
    )
    if "OpenCV not found" in configure.stderr:  # the CMakeLists' own message: a missing package, not a bug
        missing("no OpenCV development files")
    assert configure.returncode == 0, configure.stdout + configure.stderr
    compile_ = subprocess.run(["cmake", "--build", build, "-j2"], capture_output=True, text=True, timeout=600)
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    return build / "edgemtl_infer"


def parse(stdout: str) -> dict[str, str]:
    """Output name → the text after its colon."""
    return {m[1]: m[2] for line in stdout.splitlines() if (m := OUTPUT_LINE.match(line))}


def parse_objects(stdout: str) -> dict[str, list[tuple[str, int, float, np.ndarray]]]:
    """Detection task → its objects as printed: (class name, class id, score, box x1 y1 x2 y2)."""
    tasks: dict[str, list] = {}
    counts: dict[str, int] = {}
    for line in stdout.splitlines():
        if m := OBJECTS_LINE.match(line):
            task, counts[m[1]] = m[1], int(m[2])
            tasks[task] = []
        elif m := OBJECT_LINE.match(line):
            tasks[task].append((m[1], int(m[2]), float(m[3]), np.array(m.group(4, 5, 6, 7), dtype=np.float64)))
    assert counts == {task: len(objects) for task, objects in tasks.items()}, "an object line went missing"
    return tasks


@pytest.mark.parametrize(
    ("model", "size"),
    [("exported_model", None), ("exported_model", (48, 64)), ("frame_sized_model", (48, 64))],
    ids=["model-size", "camera-size", "frame-sized-dynamic"],
)
def test_cpp_matches_python_engine(cpp_program, request, tiny_data, tmp_path, model, size):
    """A frame-sized file with a dynamic frame takes the image as it is: the resize is in its graph."""
    exported_model = request.getfixturevalue(model)
    frame = tiny_data.images[0]
    if size:  # another size than the export's: both sides resize the frame in and the mask back out
        frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    check_against_engine(cpp_program, exported_model, frame, tmp_path)


@pytest.mark.parametrize("policy", ["letterbox", "crop"])
def test_cpp_applies_the_recorded_resize_policy(cpp_program, trained_run, tiny_data, tmp_path, policy):
    """A 5:3 frame into the square model: the program reads the policy from the file and cuts, pads and
    maps the mask back as the Engine does."""
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import load_checkpoint

    model = export_onnx(
        load_checkpoint(trained_run.best_checkpoint), tmp_path / f"{policy}.onnx", ExportOptions(resize=policy)
    ).path
    frame = cv2.resize(tiny_data.images[0], (80, 48), interpolation=cv2.INTER_LINEAR)
    stdout = check_against_engine(cpp_program, model, frame, tmp_path)
    assert f"edgemtl.resize: {policy}" in stdout


@pytest.mark.parametrize("policy", ["stretch", "letterbox", "crop", "frame-sized"])
def test_cpp_prints_the_boxes_of_the_python_engine(cpp_program, tmp_path, policy):
    """A scene and a detection task (untrained, scores spread so that suppression has work), a 3:5 frame into
    the square model: each kept box back in the frame's pixels under the file's policy, or already there in a
    frame-sized file (its graph resizes), as the Engine gives them. Portrait, so that the letterbox pads left
    and right and this model's boxes land in the picture, not in the padding (clipped flat to the frame's edge)."""
    from edgemtl.data.synthetic import make_dataset
    from edgemtl.deploy import ExportOptions, export_onnx

    where = {"frame_size": "dynamic"} if policy == "frame-sized" else {"resize": policy}
    options = ExportOptions(max_detections=7, score_threshold=0.3, **where)
    checkpoint = detection_checkpoint((NAVIGATION_TASKS[0], OBSTACLES_TASK))
    model = export_onnx(checkpoint, tmp_path / f"{policy}.onnx", options).path
    frame = make_dataset(1, (80, 48), seed=3, tasks=(OBSTACLES_TASK,)).images[0]
    stdout = check_against_engine(cpp_program, model, frame, tmp_path, {TaskKind.CLASSIFICATION, TaskKind.DETECTION})
    assert f"edgemtl.resize: {where.get('resize', 'stretch')}" in stdout
    boxes = np.array([box for *_, box in parse_objects(stdout)[OBSTACLES_TASK.name]])
    # a box clipped flat to the frame's edge checks less of the mapping: most of them must be real boxes
    assert np.all(boxes[:, 2:] - boxes[:, :2] > 1, axis=1).sum() >= 5, boxes


def check_against_engine(
    cpp_program: Path,
    model: Path,
    frame: np.ndarray,
    tmp_path: Path,
    kinds: set[TaskKind] = frozenset({TaskKind.CLASSIFICATION, TaskKind.SEGMENTATION}),
) -> str:
    """Run the program on `frame` and compare each output with the Python Engine's (`kinds`: the task kinds
    the model has); returns its stdout."""
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), frame)

    run = subprocess.run([cpp_program, model, image], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    printed, objects = parse(run.stdout), parse_objects(run.stdout)

    engine = Engine(model, device="cpu")
    detections = {task.name for task in engine.tasks if task.kind is TaskKind.DETECTION}
    outputs = engine.metadata.outputs
    assert set(printed) == {name for task in outputs if task not in detections for name in outputs[task].values()}
    assert set(objects) == detections
    prediction = engine.predict(frame)
    checked = set()
    for task in engine.tasks:
        names, result = engine.metadata.outputs[task.name], prediction[task.name]
        if task.kind is TaskKind.CLASSIFICATION:
            assert int(printed[names["label"]]) == result.index
            probs = np.array(printed[names["probs"]].split(), dtype=np.float64)
            np.testing.assert_allclose(probs, result.probabilities, atol=1e-4)
            checked.add(task.kind)
        elif task.kind is TaskKind.SEGMENTATION:
            shares = dict(pair.split("=") for pair in printed[names["mask"]].split())
            cpp = np.array([float(shares.get(str(i), 0)) for i in range(len(task.classes))])
            python = np.bincount(result.mask.ravel(), minlength=len(task.classes)) / result.mask.size
            # Two OpenCV builds (the system's, the wheel's) may round a resized pixel differently.
            np.testing.assert_allclose(cpp, python, atol=0.01)
            checked.add(task.kind)
        elif task.kind is TaskKind.DETECTION:
            assert_same_objects(objects[task.name], result)
            checked.add(task.kind)
    assert checked == set(kinds), "the fixture model lost a task kind"
    return run.stdout


def assert_same_objects(printed: list[tuple[str, int, float, np.ndarray]], result) -> None:
    """One to one, in any order (boxes with near-equal scores may swap places): the same class, the score
    within 1e-4, the box within 0.01 pixels of the Engine's."""
    assert len(printed) == len(result.boxes) > 0, (
        f"C++ printed {len(printed)} objects, the Engine found {len(result.boxes)}"
    )
    left = list(range(len(result.boxes)))
    for name, class_id, score, box in printed:
        match = next(
            (
                i
                for i in left
                if result.classes[i] == class_id
                and abs(result.scores[i] - score) <= 1e-4
                and np.abs(result.boxes[i] - box).max() <= 0.01
            ),
            None,
        )
        assert match is not None, f"C++'s {name} {score} {box} is none of the Engine's {result.objects.to_dicts()}"
        assert name == result.names[match]
        left.remove(match)


def test_cpp_runs_a_vector_model_like_the_python_engine(cpp_program, vector_model, vector_table, tmp_path):
    lines = vector_table.read_text().splitlines()
    header = lines[0].split(",")
    # The columns in another order than the model's: the program matches them by name, as predict does.
    order = list(reversed(range(len(header))))
    table = tmp_path / "row.csv"
    table.write_text("\n".join(",".join(line.split(",")[i] for i in order) for line in lines[:2]) + "\n")

    run = subprocess.run([cpp_program, vector_model, table], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    printed = parse(run.stdout)

    engine = Engine(vector_model, device="cpu")
    row = np.array([float(lines[1].split(",")[header.index(name)]) for name in engine.features.names], np.float32)
    outputs = engine.run(row[None])
    assert set(printed) == set(outputs)
    for name, value in outputs.items():
        np.testing.assert_allclose(np.array(printed[name].split(), dtype=np.float64), value[0].ravel(), atol=1e-4)

    table.write_text("age,bmi\n1,2\n")
    run = subprocess.run([cpp_program, vector_model, table], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "has no feature column 'heart_rate'" in run.stderr


def test_cpp_refuses_damaged_metadata_json_in_one_line(cpp_program, exported_model, tiny_data, tmp_path):
    from tests.helpers import doctor_metadata

    damaged = doctor_metadata(exported_model, tmp_path / "damaged.onnx", {"outputs": '{"scene": {"probs": "scene_pr'})
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), tiny_data.images[0])
    run = subprocess.run([cpp_program, damaged, image], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("error: edgemtl.outputs: metadata JSON: unexpected end at character"), run.stderr
