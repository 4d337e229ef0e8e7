"""Files and one check for benchmarks/gpu_check.sh.

    python benchmarks/gpu_models.py export DIR              # DIR/nano.onnx, small.onnx (+ .pt), and detection.onnx
                                                            #   when edgemtl has the detection kind (else detection.txt
                                                            #   says why not)
    python benchmarks/gpu_models.py parity MODEL --device cuda [--frames 8]

Random weights: speed does not depend on them, and the parity check compares two runtimes on one file.
`parity` runs the file on DEVICE and on the CPU (the reference) on the same frames and prints one line per
output; it exits 1 when fewer than 99 % of an output's values agree: labels, classes, counts and mask pixels
equal, probabilities, scores and boxes within 1e-3 + 1e-4 of their size (cuDNN's sums may flip a near-tie,
which tests/runtime/test_gpu.py allows too, and two boxes of nearly equal scores may swap rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

FLOAT_TOLERANCE = 1e-3  # absolute, plus RELATIVE_TOLERANCE of the value (boxes are in pixels)
RELATIVE_TOLERANCE = 1e-4
AGREEMENT = 0.99
DETECTION_TASK = ("objects", ("cone", "person", "vehicle"))


def export_file(preset: str, tasks: tuple, path: Path) -> Path:
    """A random-weight model of `preset` with `tasks`, exported as `edgemtl export` does, and its checkpoint."""
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.train import random_checkpoint, save_checkpoint

    checkpoint = random_checkpoint(preset, tasks)
    save_checkpoint(checkpoint, path.with_suffix(".pt"))
    return export_onnx(checkpoint, path, ExportOptions(), overwrite=True).path


def export_all(folder: Path) -> None:
    from edgemtl.kinds import KINDS
    from edgemtl.tasks import NAVIGATION_TASKS, TaskSpec

    folder.mkdir(parents=True, exist_ok=True)
    for preset in ("nano", "small"):
        print(export_file(preset, NAVIGATION_TASKS, folder / f"{preset}.onnx"))
    (folder / "detection.txt").unlink(missing_ok=True)
    if "detection" not in KINDS:
        (folder / "detection.txt").write_text("no detection model yet: edgemtl has no detection task kind\n")
        return
    name, classes = DETECTION_TASK
    try:
        tasks = (*NAVIGATION_TASKS, TaskSpec(name, "detection", classes))
        print(export_file("nano", tasks, folder / "detection.onnx"))
    except Exception as exc:  # the kind exists but its head or in-graph box selection may not export yet
        reason = f"no detection model yet: exporting one failed ({type(exc).__name__}: {str(exc)[:300]})"
        (folder / "detection.txt").write_text(reason + "\n")
        print(reason)


def _frames(engine, count: int) -> np.ndarray:
    """Noise, and smooth gradients (noise makes near-ties that camera frames rarely have)."""
    height, width = engine.input_size
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    for index in range(count // 2):
        frames[index] = np.broadcast_to(ramp * (0.3 + 0.1 * index), (height, width, 3)).astype(np.uint8)
    return frames


def parity(model: Path, device: str, count: int) -> int:
    from edgemtl.errors import EdgemtlError
    from edgemtl.runtime import Engine

    try:
        target = Engine(model, device)
    except EdgemtlError as exc:
        print(f"{model.name}: no {device} session here: {exc}")
        return 1
    reference = Engine(model, "cpu")
    frames = _frames(reference, count)
    got, expected = target.run(frames), reference.run(frames)
    failed = False
    print(f"{model.name}: {target.providers[0]} vs CPUExecutionProvider on {count} frames")
    for name, value in expected.items():
        if value.dtype.kind == "f":
            same = np.isclose(got[name], value, rtol=RELATIVE_TOLERANCE, atol=FLOAT_TOLERANCE)
            largest = float(np.max(np.abs(got[name].astype(np.float64) - value))) if value.size else 0.0
            diff = f", max |diff| {largest:.2e}"
        else:
            same, diff = got[name] == value, ""
        agree = float(np.mean(same)) if value.size else 1.0
        ok = agree >= AGREEMENT
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {100 * agree:.2f} % agree (>= {100 * AGREEMENT:g} %){diff}")
        failed |= not ok
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("export").add_argument("folder", type=Path)
    check = commands.add_parser("parity")
    check.add_argument("model", type=Path)
    check.add_argument("--device", default="cuda")
    check.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    if args.command == "export":
        export_all(args.folder)
        return 0
    return parity(args.model, args.device, args.frames)


if __name__ == "__main__":
    sys.exit(main())
