"""ONNX Runtime against OpenVINO on this CPU, per file, with parity per row: the table in docs/benchmarks.md.

Random-weight exports (speed does not depend on the weights) of each preset at its own camera size and at
384x640, batch 1, uint8 frame in → labels and masks out, through the Engine (`run`). Rows: today's ORT path
(`--device cpu`), `auto`, OpenVINO at each precision hint the CPU has, and the int8 QDQ files (quantized for
ONNX Runtime, the default, and `--int8-for openvino`) on both runtimes.
Timing: `--repeats` rounds; in each, every engine runs a block of `--runs` calls (the order rotating round by
round), the block's median kept; a row's figure is the median of its blocks. Blocks, not call-by-call turns:
ORT's idle threads spin after a run and would slow whichever runtime came next. Parity: each engine's outputs
against ORT's on the CPU for the same deterministic frames (the runtime's own check).

Accuracy of the hints (`--quality`): a nano model trained briefly on synthetic scenes (or --checkpoint), its
per-task metric on held-out scenes under each hint against ORT fp32, under the export's gate.

    python benchmarks/backends.py [--presets nano small base] [--repeats 5] [--runs 20] [--no-int8]
                                  [--quality [--checkpoint best.pt | --train-epochs 4]] [--pipeline]
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from speed import timed_in_turns, trained_nano

from edgemtl.commands.bench import drive_frames, write_drive_video
from edgemtl.data import open_dataset
from edgemtl.data.splits import SYNTHETIC
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.deploy.verify import compare_backend_metrics
from edgemtl.machine import describe_machine
from edgemtl.model import get_preset
from edgemtl.runtime import Engine
from edgemtl.runtime.backends import BACKENDS
from edgemtl.runtime.parity import EXACT, compare_outputs
from edgemtl.runtime.speed import bench_pipeline
from edgemtl.runtime.verified import REDUCED, verification_inputs
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import Checkpoint, random_checkpoint

LARGE = (384, 640)


def cpu_flags() -> str:
    flags = set()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx512_vnni", "avx512_bf16", "amx_bf16"))


def export_pair(preset: str, size: tuple[int, int], folder: Path, int8: bool) -> dict[str, Path]:
    checkpoint = random_checkpoint(preset, NAVIGATION_TASKS, size)
    stem = f"{preset}-{size[0]}x{size[1]}"
    files = {"fp32": export_onnx(checkpoint, folder / f"{stem}.onnx", overwrite=True).path}
    if int8:
        calibration = np.stack(drive_frames(32, size))
        for runtime, key in (("onnxruntime", "int8"), ("openvino", "int8 for openvino")):
            options = ExportOptions(precision="int8", int8_for=runtime)
            files[key] = export_onnx(
                checkpoint, folder / f"{stem}-{key.replace(' ', '-')}.onnx", options, calibration_frames=calibration
            ).path
    return files


def parity(engine: Engine, reference: Engine, strict: bool) -> str:
    """Worst probability gap and least agreement of ids/masks over the runtime's own verification frames."""
    gaps, agreements = [], []
    for frames in verification_inputs(engine.metadata):
        for check in compare_outputs(engine.run(frames), reference.run(frames), EXACT if strict else REDUCED):
            (gaps if check.measure == "max_abs_diff" else agreements).append(check.value)
    return f"probs Δ≤{max(gaps):.1g}, labels/masks {min(agreements):.2%}"


def speed_rows(preset: str, size: tuple[int, int], folder: Path, args: argparse.Namespace) -> list[str]:
    files = export_pair(preset, size, folder, int8=args.int8 and size == LARGE)
    engines: dict[str, Engine] = {"ORT fp32 (today)": Engine(files["fp32"], "cpu")}
    auto = Engine(files["fp32"], "auto")
    engines["auto"] = auto
    for spec in BACKENDS["openvino"].devices():
        if spec.startswith("openvino:") and spec.count(":") == 1:  # the CPU's hints
            engines[f"OpenVINO {spec.split(':')[1]}"] = Engine(files["fp32"], spec)
    if "int8" in files:
        engines["ORT int8"] = Engine(files["int8"], "cpu")
        engines["OpenVINO int8"] = Engine(files["int8"], "openvino")
        engines["OpenVINO int8 (--int8-for openvino)"] = Engine(files["int8 for openvino"], "openvino")
        engines["ORT int8 (--int8-for openvino)"] = Engine(files["int8 for openvino"], "cpu")
    frames = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    ms = timed_in_turns({name: partial(e.run, frames) for name, e in engines.items()}, args.repeats, args.runs)
    base = ms["ORT fp32 (today)"]
    fp32 = engines["ORT fp32 (today)"]
    ort_of_file = {engine.path: engine for name, engine in engines.items() if name.startswith("ORT")}
    rows = []
    for name, engine in engines.items():
        is_int8 = engine.metadata.precision == "int8"
        against = ort_of_file[engine.path] if is_int8 and not name.startswith("ORT") else fp32  # int8: same file
        strict = engine.target.precision in (None, "f32") and not is_int8
        check = "reference" if engine is against else parity(engine, against, strict)
        served = engine.providers[0] if name == "auto" else ""
        rows.append(
            f"| {preset} {size[0]}x{size[1]} | {name}{f' → {served}' if served else ''} | {ms[name]:.2f} "
            f"| {base / ms[name]:.2f}x | {check} |"
        )
    return rows


def trained(args: argparse.Namespace, folder: Path) -> Checkpoint:
    size = (128, 128)  # the demo's input size

    def datasets() -> tuple:
        train_data = open_dataset(SYNTHETIC, "train", size=size, count=args.train_scenes, seed=0)
        return train_data, open_dataset(SYNTHETIC, "val", size=size, count=200, seed=0)

    return trained_nano(args.checkpoint, folder, args.train_epochs, datasets, input_size=size)


def quality_rows(args: argparse.Namespace, folder: Path) -> list[str]:
    checkpoint = trained(args, folder)
    path = export_onnx(checkpoint, folder / "trained.onnx", overwrite=True).path
    scenes = open_dataset(SYNTHETIC, "test", size=checkpoint.input_size, count=args.quality_frames, seed=0)
    rows = []
    for spec in BACKENDS["openvino"].devices():
        if spec.count(":") != 1:
            continue
        report = compare_backend_metrics(path, spec, scenes)
        for c in report.comparisons:
            verdict = "pass" if c.drop <= report.max_drop else "FAIL"
            rows.append(
                f"| {spec} | {c.task} | {c.metric} | {c.pytorch:.4f} | {c.exported:.4f} | {c.drop:+.2f} "
                f"| ≤ {report.max_drop:g}: {verdict} |"
            )
    return rows


def pipeline_rows(folder: Path) -> list[str]:
    """The camera pipeline on a 480x640 synthetic drive: nano at its own size, ORT against auto."""
    preset = get_preset("nano")
    files = export_pair("nano", preset.input_size, folder, int8=False)
    video = write_drive_video(folder / "drive.mp4", 300, (480, 640))
    rows = []
    for device in ("cpu", "auto"):
        engine = Engine(files["fp32"], device)
        result = bench_pipeline(engine, video, frames=300, repeats=2)
        rows.append(
            f"| nano {preset.input_size[0]}x{preset.input_size[1]} | {device} → {engine.providers[0]} "
            f"| {result.model_alone_fps:.0f} | {result.pipeline_fps:.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small", "base"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-int8", dest="int8", action="store_false")
    parser.add_argument("--no-speed", dest="speed", action="store_false", help="Only --pipeline / --quality.")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--train-epochs", type=int, default=4)
    parser.add_argument("--train-scenes", type=int, default=1200)
    parser.add_argument("--quality-frames", type=int, default=200)
    parser.add_argument("--pipeline", action="store_true")
    args = parser.parse_args()
    import onnxruntime
    import openvino

    print(f"Machine: {describe_machine()}; {cpu_flags()}")
    print(
        f"{datetime.date.today()}; onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__.split('-')[0]}"
    )
    print(f"load average at start {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)\n")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.speed:
            print("| model | runtime | ms (median) | × ORT fp32 | parity with ORT |\n|---|---|---|---|---|")
        for preset in args.presets if args.speed else ():
            for size in dict.fromkeys([get_preset(preset).input_size, LARGE]):
                for row in speed_rows(preset, size, folder, args):
                    print(row, flush=True)
        if args.pipeline:
            print("\n| model | device | model alone (FPS) | pipeline on a 480x640 file (FPS) |\n|---|---|---|---|")
            for row in pipeline_rows(folder):
                print(row, flush=True)
        if args.quality:
            print("\n| hint | task | metric | ORT fp32 | hint | drop (pt) | gate |\n|---|---|---|---|---|---|---|")
            for row in quality_rows(args, folder):
                print(row, flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
