"""The emulated ARM check's three halves: files made on x86, outputs dumped on each side, the comparison.

    python .ci/arm64_parity.py make DIR                       # x86, with torch: tiny random-weight exports + a frame
    python .ci/arm64_parity.py dump DIR OUT [--openvino]      # either side, runtime only: raw outputs to OUT/*.npz
    python .ci/arm64_parity.py compare X86_OUT ARM_OUT        # x86: labels and masks equal, probabilities within 1e-4

`dump` needs only numpy, OpenCV and the runtime (no torch, no pytest), so it runs under qemu on an arm64
Python. `compare` also compares what `edgemtl predict` wrote on each side (masks/*.png, predictions.jsonl)
and what `edgemtl info` printed. Exit code 1 and one line per disagreement when anything differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PROBABILITY_TOLERANCE = 1e-4
# model file -> the frame it is fed: a plain export (the Engine resizes on the host) and a frame-sized one
# (the graph resizes, and returns the mask at the frame's size)
MODELS = {"model.onnx": "scene.png", "frame-sized.onnx": "scene.png"}
FRAME_SIZE = (120, 160)  # (height, width) of scene.png


def make(folder: Path) -> None:
    """Random weights are enough: the check is that both machines compute the same thing from one file."""
    import cv2
    import torch

    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.model import DEFAULT_MEAN, DEFAULT_STD, create_model
    from edgemtl.tasks import NAVIGATION_TASKS
    from edgemtl.train import Checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = create_model("nano", NAVIGATION_TASKS).eval()
    checkpoint = Checkpoint("nano", NAVIGATION_TASKS, (64, 96), DEFAULT_MEAN, DEFAULT_STD, model.state_dict())
    export_onnx(checkpoint, folder / "model.onnx", ExportOptions(), overwrite=True)
    export_onnx(checkpoint, folder / "frame-sized.onnx", ExportOptions(frame_size=FRAME_SIZE), overwrite=True)
    # smooth shapes plus noise: a frame the resize has work to do on, at a size the plain model was not exported at
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[: FRAME_SIZE[0], : FRAME_SIZE[1]]
    frame = np.stack([(rows * 2 + cols) % 256, (cols * 3) % 256, (rows * 5) % 256], axis=-1).astype(np.int16)
    frame = np.clip(frame + rng.integers(-40, 40, frame.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / "scene.png"), frame)


def _openvino_outputs(model: Path, frames: np.ndarray) -> dict[str, np.ndarray]:
    """OpenVINO's own API at f32 (the ARM CPU plugin's default is f16): the file as it is, no edgemtl backend."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(str(model), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(frames)
    return {port.get_any_name(): np.asarray(result[port]) for port in compiled.outputs}


def dump(folder: Path, out: Path, openvino: bool) -> None:
    import cv2

    from edgemtl.runtime import Engine

    out.mkdir(parents=True, exist_ok=True)
    for model, image in MODELS.items():
        engine = Engine(folder / model, device="cpu")
        frame = cv2.imread(str(folder / image))
        prepared = engine.prepare(frame)[np.newaxis]
        arrays = {"input": prepared, **engine.run(prepared)}
        if openvino:
            arrays |= {f"openvino/{name}": value for name, value in _openvino_outputs(folder / model, prepared).items()}
        np.savez(out / f"{Path(model).stem}.npz", **arrays)
        print(f"{model}: {', '.join(f'{k} {v.shape} {v.dtype}' for k, v in arrays.items())}")


def _compare_arrays(name: str, expected: np.ndarray, got: np.ndarray) -> tuple[str, bool]:
    if expected.shape != got.shape or expected.dtype != got.dtype:
        return f"{expected.shape} {expected.dtype} vs {got.shape} {got.dtype}", False
    if expected.dtype.kind == "f":
        diff = float(np.max(np.abs(expected.astype(np.float64) - got))) if expected.size else 0.0
        return f"max |diff| {diff:.2e} (<= {PROBABILITY_TOLERANCE:g})", diff <= PROBABILITY_TOLERANCE
    equal = float(np.mean(expected == got)) if expected.size else 1.0
    return f"{100 * equal:.3f} % equal (= 100 %)", equal == 1.0


def _predict_files(folder: Path) -> dict[str, np.ndarray | str]:
    """What `edgemtl predict` wrote: each mask PNG's class ids, and each frame's labels from predictions.jsonl."""
    import cv2

    found: dict[str, np.ndarray | str] = {}
    for png in sorted(folder.glob("masks/**/*.png")):
        found[str(png.relative_to(folder))] = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    for index, line in enumerate((folder / "predictions.jsonl").read_text().splitlines()):
        record = json.loads(line)
        labels = {k: v["label"] for k, v in record.get("tasks", record).items() if isinstance(v, dict) and "label" in v}
        found[f"predictions.jsonl line {index + 1} labels"] = json.dumps(labels, sort_keys=True)
    return found


def compare(x86: Path, arm: Path) -> int:
    rows: list[tuple[str, str, bool]] = []
    for model in MODELS:
        stem = Path(model).stem
        with np.load(x86 / f"{stem}.npz") as expected_file, np.load(arm / f"{stem}.npz") as got_file:
            expected, got = dict(expected_file), dict(got_file)
        for name, value in expected.items():
            rows.append((f"{model} {name} (ORT arm64)", *_compare_arrays(name, value, got[name])))
            if f"openvino/{name}" in got:
                rows.append((f"{model} {name} (OpenVINO arm64, f32)", *_compare_arrays(name, value, got[f"openvino/{name}"])))
        for stem_dir in (f"predict-{stem}",):
            expected_files, got_files = _predict_files(x86 / stem_dir), _predict_files(arm / stem_dir)
            if expected_files.keys() != got_files.keys():
                rows.append((f"{stem_dir} files", f"{sorted(expected_files)} vs {sorted(got_files)}", False))
            for name, value in expected_files.items():
                if name not in got_files:
                    continue
                if isinstance(value, str):
                    rows.append((f"{stem_dir} {name}", f"{value} vs {got_files[name]}", value == got_files[name]))
                else:
                    rows.append((f"{stem_dir} {name}", *_compare_arrays(name, value, got_files[name])))
        info_x86, info_arm = (x86 / f"info-{stem}.txt").read_text(), (arm / f"info-{stem}.txt").read_text()
        rows.append((f"edgemtl info {model}", "same text" if info_x86 == info_arm else "differs", info_x86 == info_arm))
    width = max(len(name) for name, _, _ in rows)
    for name, detail, ok in rows:
        print(f"{'ok  ' if ok else 'FAIL'} {name:<{width}}  {detail}")
    failed = [name for name, _, ok in rows if not ok]
    print(f"arm64 vs x86: {len(rows) - len(failed)} of {len(rows)} checks agree")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("make").add_argument("folder", type=Path)
    dump_parser = commands.add_parser("dump")
    dump_parser.add_argument("folder", type=Path)
    dump_parser.add_argument("out", type=Path)
    dump_parser.add_argument("--openvino", action="store_true", help="also run each file through OpenVINO (f32)")
    compare_parser = commands.add_parser("compare")
    compare_parser.add_argument("x86", type=Path)
    compare_parser.add_argument("arm", type=Path)
    args = parser.parse_args()
    if args.command == "make":
        make(args.folder)
    elif args.command == "dump":
        dump(args.folder, args.out, args.openvino)
    else:
        return compare(args.x86, args.arm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
