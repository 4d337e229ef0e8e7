"""The emulated ARM check's comparator (.ci/arm64_parity.py), on hand-made outputs: the arm64 run itself
lives in CI (.ci/arm64_check.sh), but a comparator that passes everything would hide any difference."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("arm64_parity", ROOT / ".ci" / "arm64_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _side(folder: Path, parity, machine: str, openvino: dict[str, np.ndarray] | None = None) -> Path:
    """What one side's `edgemtl info`, `edgemtl predict` and `dump` leave, for every model of the check."""
    rng = np.random.default_rng(0)
    for model in parity.MODELS:
        stem = Path(model).stem
        mask = rng.integers(0, 4, (6, 8), dtype=np.uint8)
        arrays = {"scene_probs": np.full((1, 4), 0.25, np.float32), "segmentation_mask": mask[None]}
        arrays |= {f"{parity.RAW_OPENVINO}/{k}": v for k, v in (openvino or {}).items()}
        np.savez(folder / f"{stem}.npz", machine=np.array(machine), **arrays)
        (folder / f"predict-{stem}" / "masks").mkdir(parents=True)
        cv2.imwrite(str(folder / f"predict-{stem}" / "masks" / "scene.png"), mask)
        record = {"frame": "scene", "scene": {"label": "left", "confidence": 0.25}}
        (folder / f"predict-{stem}" / "predictions.jsonl").write_text(json.dumps(record) + "\n")
        (folder / f"info-{stem}.txt").write_text(f"{model}\n")
    return folder


@pytest.fixture
def sides(tmp_path, parity):
    (tmp_path / "x86").mkdir()
    x86 = _side(tmp_path / "x86", parity, "x86_64")
    arm = tmp_path / "arm64"
    shutil.copytree(x86, arm)
    for npz in arm.glob("*.npz"):
        arrays = dict(np.load(npz))
        np.savez(npz, **(arrays | {"machine": np.array("aarch64")}))
    return x86, arm


def test_equal_sides_pass(parity, sides, capsys):
    assert parity.compare(*sides) == 0
    assert "0 fail" in capsys.readouterr().out


def _edit_npz(path: Path, **changes: np.ndarray) -> None:
    arrays = dict(np.load(path))
    np.savez(path, **(arrays | changes))


def test_one_mask_pixel_or_a_probability_off_fails(parity, sides, capsys):
    x86, arm = sides
    mask = np.load(arm / "model.npz")["segmentation_mask"].copy()
    mask[0, 0, 0] ^= 1
    _edit_npz(arm / "model.npz", segmentation_mask=mask)
    _edit_npz(arm / "frame-sized.npz", scene_probs=np.full((1, 4), 0.25 + 2e-4, np.float32))
    assert parity.compare(x86, arm) == 1
    out = capsys.readouterr().out
    assert "FAIL  model.onnx segmentation_mask" in out and "FAIL  frame-sized.onnx scene_probs" in out


def test_a_predicted_mask_or_label_that_differs_fails(parity, sides, capsys):
    x86, arm = sides
    cv2.imwrite(str(arm / "predict-model" / "masks" / "scene.png"), np.zeros((6, 8), np.uint8))
    record = {"frame": "scene", "scene": {"label": "right", "confidence": 0.25}}
    (arm / "predict-frame-sized" / "predictions.jsonl").write_text(json.dumps(record) + "\n")
    assert parity.compare(x86, arm) == 1
    out = capsys.readouterr().out
    assert "FAIL  predict-model masks/scene.png" in out and '"right"' in out


def test_a_side_that_did_not_run_on_arm_fails(parity, sides):
    x86, arm = sides
    _edit_npz(arm / "model.npz", machine=np.array("x86_64"))
    assert parity.compare(x86, arm) == 1


def test_raw_openvino_on_a_frame_sized_file_is_reported_not_failed_but_on_a_plain_file_fails(parity, sides, capsys):
    x86, arm = sides
    wrong = np.zeros((1, 6, 8), np.uint8)
    _edit_npz(arm / "frame-sized.npz", **{f"{parity.RAW_OPENVINO}/segmentation_mask": wrong})
    assert parity.compare(x86, arm) == 0
    assert "known frame-sized.onnx segmentation_mask" in capsys.readouterr().out
    _edit_npz(arm / "model.npz", **{f"{parity.RAW_OPENVINO}/segmentation_mask": wrong})
    assert parity.compare(x86, arm) == 1


def test_info_may_differ_in_its_runtime_line_only(parity, sides):
    x86, arm = sides
    (x86 / "info-model.txt").write_text("model.onnx\nruntime onnxruntime 1.31.1 (cpu, cuda, tensorrt)\n")
    (arm / "info-model.txt").write_text("model.onnx\nruntime onnxruntime 1.32.0 (cpu)\n")
    assert parity.compare(x86, arm) == 0
    (arm / "info-model.txt").write_text("model.onnx, another file\nruntime onnxruntime 1.32.0 (cpu)\n")
    assert parity.compare(x86, arm) == 1


def _verdict(folder: Path, stem: str, served: bool, parity) -> None:
    """The Engine's OpenVINO on one side: refused in one line, or served (its outputs equal ORT's here)."""
    arrays = dict(np.load(folder / f"{stem}.npz"))
    if served:
        arrays |= {f"{parity.ENGINE_OPENVINO}/{k}": arrays[k] for k in ("scene_probs", "segmentation_mask")}
    else:
        arrays[f"{parity.ENGINE_OPENVINO}/refused"] = np.array(f"{stem}.onnx: openvino:CPU:f32 disagrees")
    np.savez(folder / f"{stem}.npz", **arrays)


@pytest.mark.parametrize(
    ("x86", "arm", "result"),
    [("refused", "refused", 0), ("served", "served", 0), ("served", "refused", 1), ("refused", "served", 1)],
)
def test_arm64_must_give_x86s_openvino_verdict(parity, sides, x86, arm, result):
    x86_dir, arm_dir = sides
    _verdict(x86_dir, "model", x86 == "served", parity)
    _verdict(arm_dir, "model", arm == "served", parity)
    assert parity.compare(x86_dir, arm_dir) == result


def test_without_openvino_on_x86_only_a_frame_sized_file_may_be_refused(parity, sides):
    x86_dir, arm_dir = sides
    _verdict(arm_dir, "frame-sized", False, parity)
    assert parity.compare(x86_dir, arm_dir) == 0
    _verdict(arm_dir, "model", False, parity)
    assert parity.compare(x86_dir, arm_dir) == 1
