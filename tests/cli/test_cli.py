"""The `edgemtl` command: output a user reads, files it writes, and one-line errors with exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgemtl.cli import main
from edgemtl.tasks import NAVIGATION_TASKS
from tests.helpers import assert_one_line_error, invoke, snapshot, write_foreign_onnx, write_images, write_video

SCENE, SEGMENTATION = NAVIGATION_TASKS


# --- info -----------------------------------------------------------------------------------------------


def test_info_describes_an_export(exported_model):
    result = invoke("info", exported_model)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("scene", "segmentation", *SCENE.classes, *SEGMENTATION.classes, "precision fp32", "32 x 32"):
        assert text in out, f"{text!r} missing from:\n{out}"
    assert "scene_probs" in out and "segmentation_mask" in out
    assert "runtime onnxruntime" in out and "device auto: " in out  # what auto serves the file with here, and why


def test_info_on_a_foreign_onnx_file(tmp_path):
    path = write_foreign_onnx(tmp_path / "identity.onnx")
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    assert "not an edgemtl export" in result.output
    assert "input  x" in result.output and "output y" in result.output


def test_info_on_a_missing_file(tmp_path):
    path = tmp_path / "missing.onnx"
    result = invoke("info", path)
    assert_one_line_error(result, str(path), "does not exist")


def test_info_on_a_garbage_file(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(64) + b"not onnx")
    result = invoke("info", path)
    assert_one_line_error(result, str(path))


def test_console_script_error_has_no_traceback(tmp_path):
    script = Path(sys.executable).with_name("edgemtl")
    assert script.exists(), "the edgemtl console script is installed beside the interpreter"
    path = tmp_path / "missing.onnx"
    result = subprocess.run([str(script), "info", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("Error: ") and str(path) in result.stderr


# --- predict --------------------------------------------------------------------------------------------


def test_predict_on_a_folder(tmp_path, exported_model):
    images = tmp_path / "images"
    write_images(images, 3, size=(40, 56), prefix="frame")
    out = tmp_path / "out"
    result = invoke("predict", images, "-m", exported_model, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "3 frames" in result.output and "CPUExecutionProvider" in result.output

    overlays = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert overlays == ["frame_0.png", "frame_1.png", "frame_2.png"]
    assert cv2.imread(str(out / "overlays" / "frame_0.png")).shape == (40, 56, 3)
    readable = cv2.imread(str(out / "overlays" / "readable" / "frame_0.png"))
    assert readable.shape == (480, 672, 3), "a small frame's overlay is also drawn 12× larger, to be read"
    masks = sorted((out / "masks").glob("*.png"))
    assert [p.name for p in masks] == overlays
    for path in masks:
        with Image.open(path) as mask:
            assert mask.mode == "P"
            assert mask.size == (56, 40)
            assert int(np.asarray(mask).max()) < len(SEGMENTATION.classes)

    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == ["frame_0", "frame_1", "frame_2"]
    for record in records:
        assert record["scene"]["label"] in SCENE.classes
        assert set(record["segmentation"]["class_fractions"]) == set(SEGMENTATION.classes)


def test_predict_twice_never_overwrites(tmp_path, exported_model):
    images = tmp_path / "images"
    write_images(images, 2, size=(40, 56), prefix="frame")
    out = tmp_path / "out"
    first = invoke("predict", images, "-m", exported_model, "-o", out, "--device", "cpu")
    assert first.exit_code == 0, first.output
    before = snapshot(out)
    assert before

    second = invoke("predict", images, "-m", exported_model, "-o", out, "--device", "cpu")
    assert second.exit_code == 0, second.output
    assert str(tmp_path / "out2") in second.output
    assert snapshot(out) == before, "the first results are untouched"
    assert snapshot(tmp_path / "out2").keys() == before.keys()


def test_predict_on_a_video(tmp_path, exported_model):
    video = write_video(tmp_path / "clip.mp4", 6)
    out = tmp_path / "out"
    result = invoke("predict", video, "-m", exported_model, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    overlay = out / "clip_overlay.mp4"
    assert overlay.is_file()
    capture = cv2.VideoCapture(str(overlay))
    try:
        assert capture.isOpened()
        frames = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            assert image.shape == (40, 48, 3)
            frames += 1
    finally:
        capture.release()
    assert frames == 6
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 6
    assert not (out / "masks").exists(), "video runs write no per-frame mask PNGs"


def test_predict_on_a_missing_source(tmp_path, exported_model):
    source = tmp_path / "nowhere"
    result = invoke("predict", source, "-m", exported_model, "-o", tmp_path / "out", "--device", "cpu")
    assert_one_line_error(result, str(source))


# --- export ---------------------------------------------------------------------------------------------


@pytest.mark.slow  # the PyTorch → ONNX export alone takes several seconds on a small CPU
def test_export_writes_a_verified_model(tmp_path, trained_run):
    path = tmp_path / "model.onnx"
    result = invoke("export", trained_run.best_checkpoint, "-o", path, "--verify-frames", 8)
    assert result.exit_code == 0, result.output
    assert path.is_file() and path.stat().st_size > 0
    assert f"wrote {path}" in result.output
    assert "parity with PyTorch on 8 frames" in result.output
    parity_lines = [line for line in result.output.splitlines() if line.startswith("  ")]
    assert parity_lines, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"], "no temporary files are left behind"
    info = invoke("info", path)
    assert info.exit_code == 0 and "precision fp32" in info.output and "32 x 32" in info.output


def test_export_refuses_to_overwrite(tmp_path, trained_run, exported_model):
    path = tmp_path / "model.onnx"
    path.write_bytes(exported_model.read_bytes())
    before = path.read_bytes()
    result = invoke("export", trained_run.best_checkpoint, "-o", path, "--verify-frames", 8)
    assert_one_line_error(result, str(path), "--overwrite")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.parametrize(
    "content",
    [np.random.default_rng(0).bytes(300), b"this is not a checkpoint" * 20, b"hello world\n", b""],
    ids=["random", "text-repeated", "text-line", "empty"],
)
def test_export_of_a_corrupt_checkpoint(tmp_path, content):
    checkpoint = tmp_path / "broken.pt"
    checkpoint.write_bytes(content)
    result = CliRunner().invoke(main, ["export", str(checkpoint), "-o", str(tmp_path / "m.onnx")])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_error(result, str(checkpoint))
    assert not (tmp_path / "m.onnx").exists()


def test_export_of_a_missing_checkpoint(tmp_path):
    checkpoint = tmp_path / "missing.pt"
    result = invoke("export", checkpoint, "-o", tmp_path / "m.onnx")
    assert_one_line_error(result, str(checkpoint), "does not exist")


# --- train option errors --------------------------------------------------------------------------------


def test_train_unknown_preset(tmp_path):
    result = invoke("train", "--preset", "huge", "--out", tmp_path / "run", "--no-progress")
    line = assert_one_line_error(result, "huge")
    for name in ("nano", "small", "base"):
        assert name in line


def test_train_input_size_that_does_not_fit(tmp_path):
    result = invoke(
        "train",
        "--input-size",
        "100",
        "--train-size",
        8,
        "--epochs",
        1,
        "--device",
        "cpu",
        "--out",
        tmp_path / "run",
        "--no-progress",
    )
    assert_one_line_error(result, "100x100", "use 96x96")  # the nearest valid size


def test_train_input_size_not_understood(tmp_path):
    result = invoke("train", "--input-size", "big", "--out", tmp_path / "run", "--no-progress")
    assert_one_line_error(result, "'big'", "HxW")


# --- end to end -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_export_info_predict_through_the_cli(tmp_path):
    run = tmp_path / "run"
    trained = invoke(
        "train", "--input-size", 32, "--epochs", 1, "--train-size", 64, "--device", "cpu", "--no-progress", "--out", run
    )
    assert trained.exit_code == 0, trained.output
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()

    exported = invoke("export", run / "best.pt", "--verify-frames", 8)
    assert exported.exit_code == 0, exported.output
    model = run / "best.onnx"
    assert model.is_file()
    assert "parity with PyTorch on 8 frames" in exported.output

    info = invoke("info", model)
    assert info.exit_code == 0, info.output
    assert "32 x 32" in info.output and all(c in info.output for c in SCENE.classes)

    images = tmp_path / "images"
    write_images(images, 4, size=(48, 64), prefix="frame")
    out = tmp_path / "predictions"
    predicted = invoke("predict", images, "-m", model, "-o", out, "--device", "cpu")
    assert predicted.exit_code == 0, predicted.output
    assert len(list((out / "overlays").glob("*.png"))) == 4
    assert len(list((out / "masks").glob("*.png"))) == 4
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert all(json.loads(line)["scene"]["label"] in SCENE.classes for line in lines)


# --- export edge cases ----------------------------------------------------------------------------------


def test_export_of_a_model_with_its_own_tasks_asks_for_its_data(trained_run, tmp_path):
    import dataclasses

    from edgemtl.tasks import TaskSpec
    from edgemtl.train import load_checkpoint, save_checkpoint

    checkpoint = load_checkpoint(trained_run.best_checkpoint)
    renamed = (TaskSpec("turn", "classification", SCENE.classes), SEGMENTATION)
    custom = save_checkpoint(dataclasses.replace(checkpoint, tasks=renamed), tmp_path / "custom.pt")
    result = invoke("export", custom, "-o", tmp_path / "m.onnx")
    assert_one_line_error(result, "--verify-data FOLDER")
    result = invoke("export", custom, "--no-verify", "--precision", "int8", "-o", tmp_path / "m.onnx")
    assert_one_line_error(result, "--calib-data FOLDER")


def test_a_full_disk_during_export_is_one_line_and_replaces_nothing(trained_run, tmp_path, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous model")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "tmp.onnx"))

    monkeypatch.setattr("onnx.save", disk_full)
    result = invoke("export", trained_run.best_checkpoint, "--no-verify", "--overwrite", "-o", target)
    line = assert_one_line_error(result, "No space left on device", f"writing {target}")
    assert "tmp.onnx" not in line, "the user's path is named, not the temporary one beside it"
    assert target.read_bytes() == b"previous model"


def test_a_failed_triton_export_leaves_no_repository(trained_run, tmp_path):
    repository = tmp_path / "models"
    result = invoke(
        "export", trained_run.best_checkpoint, "--format", "triton", "--input-size", "100", "-o", repository
    )
    assert_one_line_error(result, "multiples of 32")
    assert not repository.exists()


def test_cli_choices_match_the_library_tables():
    from edgemtl.deploy import CALIBRATION_METHODS, DEFAULT_OPSET, PRECISIONS
    from edgemtl.train.weighting import WEIGHTINGS

    export = {p.name: p for p in main.commands["export"].params}
    train = {p.name: p for p in main.commands["train"].params}
    assert tuple(export["precision"].type.choices) == PRECISIONS
    assert tuple(export["calib_method"].type.choices) == tuple(CALIBRATION_METHODS)
    assert export["opset"].default == DEFAULT_OPSET
    assert tuple(train["weighting"].type.choices) == tuple(WEIGHTINGS)


# --- signals --------------------------------------------------------------------------------------------


def test_sigterm_raises_like_ctrl_c_once_and_the_handler_is_restored():
    import os
    import signal
    import time

    from edgemtl.cli.options import _sigterm_like_ctrl_c
    from edgemtl.errors import Terminated

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as error, _sigterm_like_ctrl_c() as received:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises here, at once
    assert isinstance(error.value, Terminated) and received == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_forked_child_ends_on_sigterm_quietly_as_without_edgemtl():
    """OpenVINO's telemetry sender is a forked process its parent terminates at exit: it inherits the handler,
    and printed a Terminated traceback on stderr (found by the emulated arm64 check)."""
    import multiprocessing
    import signal
    import time

    from edgemtl.cli.options import _sigterm_like_ctrl_c

    context = multiprocessing.get_context("fork")
    with _sigterm_like_ctrl_c() as received:
        child = context.Process(target=time.sleep, args=(30,))
        child.start()
        time.sleep(0.2)
        child.terminate()  # SIGTERM
        child.join(10)
    assert child.exitcode == -signal.SIGTERM and received == []
