"""Frame-sized files against the host path: speed per camera frame, the pipeline against its slowest stage,
and what upsampling the logits before the argmax gains over a nearest-neighbour blow-up of the small mask.

Speed uses random-weight models (speed does not depend on the weights), exported twice from one
checkpoint: as usual (frames at the model's size, the host resizes) and with --frame-size 480x640
--overlay-output. Everything compared is timed in turns (`time_interleaved`), medians.

Quality needs a trained model: pass --checkpoint, or let --train-epochs train nano briefly on synthetic
scenes. It is scored on held-out scenes rendered at 480x640 with full-resolution masks.

    python benchmarks/frame_size.py [--presets nano small] [--input-size 128x128] [--runs 200]
                                    [--checkpoint best.pt | --train-epochs 6] [--quality-frames 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
from speed import trained_nano

from edgemtl.commands.bench import drive_frames, write_drive_video
from edgemtl.data.synthetic import make_dataset
from edgemtl.deploy import ExportOptions, export_onnx
from edgemtl.kinds.scores import confusion_matrix, iou_per_class, mean_iou
from edgemtl.machine import describe_machine
from edgemtl.model import get_preset
from edgemtl.runtime import Engine, EngineOptions, run_pipeline
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.overlay import Overlay
from edgemtl.runtime.results import Prediction
from edgemtl.runtime.sinks import NullSink
from edgemtl.runtime.sources import open_source
from edgemtl.runtime.speed import split_stages
from edgemtl.runtime.timing import median_ms, time_interleaved
from edgemtl.tasks import NAVIGATION_TASKS
from edgemtl.train import Checkpoint, random_checkpoint

FRAME = (480, 640)  # a VGA camera: (height, width)


def export_files(checkpoint: Checkpoint, folder: Path, stem: str) -> dict[str, Path]:
    """The host-path file (and one with raw logits, for `bilinear_on_host`), the frame-sized one, and the
    frame-sized one with the overlay output."""
    options = {
        "host path": ExportOptions(),
        "host path, raw logits": ExportOptions(raw_logits=True),
        "frame-sized": ExportOptions(frame_size=FRAME),
        "frame-sized + overlay": ExportOptions(frame_size=FRAME, overlay=True),
    }
    return {
        name: export_onnx(checkpoint, folder / f"{stem}-{index}.onnx", option, overwrite=True).path
        for index, (name, option) in enumerate(options.items())
    }


def bilinear_on_host(engine: Engine, frame: np.ndarray) -> Prediction:
    """The frame-sized file's masks computed on the host: the model-size logits upsampled bilinearly with
    OpenCV (half-pixel centres, as the graph's Resize), then the argmax. What the host path would cost
    to give the same masks."""
    raw = engine.run(engine.prepare(frame)[np.newaxis])
    prediction = engine.results(raw, engine.input_size)  # masks at the model's size: not blown up here
    results = dict(prediction.items())
    for name, result in prediction.items():
        if result.mask is not None:
            logits = raw[engine.metadata.outputs[name]["logits"]][0].transpose(1, 2, 0)  # (h, w, C)
            size = (frame.shape[1], frame.shape[0])
            upsampled = cv2.resize(np.ascontiguousarray(logits), size, interpolation=cv2.INTER_LINEAR)
            upsampled = upsampled.reshape(frame.shape[0], frame.shape[1], -1)  # one class: cv2 drops the axis
            results[name] = dataclasses.replace(result, mask=upsampled.argmax(-1).astype(np.uint8))
    return Prediction(results)


def speed_rows(
    preset: str, size: tuple[int, int], folder: Path, runs: int, video: Path, device: str = "cpu"
) -> list[str]:
    checkpoint = random_checkpoint(preset, NAVIGATION_TASKS, size)
    # on the CPU the pipeline's setting (the other core decodes and draws); on a GPU the Engine's defaults
    options = EngineOptions(threads=1, spinning=False) if device == "cpu" else EngineOptions()
    files = export_files(checkpoint, folder, preset)
    engines = {name: Engine(path, device, options) for name, path in files.items()}
    on_host = engines.pop("host path, raw logits")
    (frame,) = drive_frames(1, FRAME)
    calls = {}
    on_host_overlay = Overlay()
    calls["host path, bilinear logits: e2e"] = lambda: on_host_overlay.render(frame, bilinear_on_host(on_host, frame))
    pool = BufferPool()
    for name, engine in engines.items():
        graph_input = engine.prepare(frame)[np.newaxis]
        overlay = Overlay()
        calls[f"{name}: engine"] = lambda e=engine, x=graph_input: e.run(x)
        calls[f"{name}: engine, pooled"] = lambda e=engine, x=graph_input: pool.give_back(*e.run(x, pool).values())
        calls[f"{name}: e2e"] = lambda e=engine, o=overlay: o.render(frame, e.predict(frame))
    ms = {name: median_ms(t) for name, t in time_interleaved(calls, runs).items()}
    host_e2e = ms["host path: e2e"]
    bilinear_e2e = ms["host path, bilinear logits: e2e"]
    rows = [
        f"| {preset} {size[0]}x{size[1]} | host path, bilinear logits on the host | | | {bilinear_e2e:.2f} | "
        f"| {host_e2e / bilinear_e2e:.2f} | | | | | |"
    ]
    for name, engine in engines.items():
        engine_ms, e2e_ms = ms[f"{name}: engine"], ms[f"{name}: e2e"]
        split = split_stages(engine, video, NullSink(draw=True), frames=200)
        with open_source(video) as source:
            stats = run_pipeline(engine, source, NullSink(draw=True), report=None)
        # The pipeline's threads: decode (+ the host resize) | inference | results, overlay and output.
        threads = {
            "decode+preprocess": split.medians_ms["decode"] + split.medians_ms["preprocess"],
            "inference": split.medians_ms["inference"],
            "postprocess+overlay": split.medians_ms["postprocess"] + split.medians_ms["overlay"],
        }
        slowest = max(threads, key=threads.get)
        alone_fps = 1000 / threads[slowest]
        # Each thread is busy its stage's time per frame, and the threads share the cores: the cores can
        # give at most this many frames a second, whatever the slowest stage alone does.
        ceiling_fps = min(alone_fps, 1000 * (os.cpu_count() or 1) / sum(threads.values()))
        stages = ", ".join(f"{stage} {value:.1f}" for stage, value in split.medians_ms.items() if stage != "write")
        rows.append(
            f"| {preset} {size[0]}x{size[1]} | {name} | {engine_ms:.2f} | {ms[f'{name}: engine, pooled']:.2f} "
            f"| {e2e_ms:.2f} | {e2e_ms / engine_ms:.2f} | {host_e2e / e2e_ms:.2f} | {stages} "
            f"| {slowest} {alone_fps:.0f} | {stats.fps:.0f} | {stats.fps / alone_fps:.0%} "
            f"| {ceiling_fps:.0f}, {stats.fps / ceiling_fps:.0%} |"
        )
    return rows


def trained_checkpoint(args: argparse.Namespace, folder: Path) -> Checkpoint:
    size = get_preset("nano").input_size

    def datasets() -> tuple:
        return make_dataset(1500, size, seed=0), make_dataset(200, size, seed=1_000)

    return trained_nano(args.checkpoint, folder, args.train_epochs, datasets, device="cpu")


def quality_rows(checkpoint: Checkpoint, folder: Path, frames: int) -> list[str]:
    """mIoU and per-class IoU at the frame's resolution: the host path's nearest blow-up of the model-size
    mask, against the frame-sized file's logits upsampled bilinearly before the argmax."""
    files = export_files(checkpoint, folder, "trained")
    on_host = Engine(files["host path, raw logits"], "cpu")
    paths = {
        "host path (nearest mask)": Engine(files["host path"], "cpu").predict,
        "host path, bilinear logits on the host": lambda image: bilinear_on_host(on_host, image),
        "frame-sized (bilinear logits)": Engine(files["frame-sized"], "cpu").predict,
    }
    scenes = make_dataset(frames, FRAME, seed=424_242)  # held out: no training seed comes near
    task = next(t for t in checkpoint.tasks if t.name == "segmentation")
    rows = []
    for name, predict in paths.items():
        confusion = sum(
            confusion_matrix(predict(image)["segmentation"].mask, target, len(task.classes))
            for image, target in zip(scenes.images, scenes.targets["segmentation"])
        )
        ious = " | ".join(f"{iou:.4f}" for iou in iou_per_class(confusion))
        rows.append(f"| {name} | {mean_iou(confusion):.4f} | {ious} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["nano", "small"])
    parser.add_argument("--input-size", default=None, help="HxW for every preset; default: each preset's own")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--train-epochs", type=int, default=6)
    parser.add_argument("--quality-frames", type=int, default=100)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--device", default="cpu", help="where the speed rows run: cpu, cuda, tensorrt")
    args = parser.parse_args()
    print(f"Machine: {describe_machine()}; load average at start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        video = write_drive_video(folder / "drive.mp4", 400, FRAME)
        on = "1 inference thread" if args.device == "cpu" else f"device {args.device}"
        print(f"\nSpeed per {FRAME[0]}x{FRAME[1]} frame, ms (median of {args.runs}, in turns; {on}):\n")
        print(
            "| preset | file | engine only | engine, outputs into a pool | end to end | e2e / engine "
            "| host e2e / this e2e | stages alone (ms) | slowest thread (FPS) | pipeline (FPS) | pipeline / slowest "
            "| the cores' ceiling (FPS), pipeline / it |"
        )
        print("|---" * 12 + "|")
        for preset in args.presets:
            size = get_preset(preset).input_size
            if args.input_size:
                size = tuple(int(side) for side in args.input_size.lower().split("x"))
            for row in speed_rows(preset, size, folder, args.runs, video, args.device):
                print(row)
        if not args.skip_quality:
            checkpoint = trained_checkpoint(args, folder)
            segmentation = next(t for t in checkpoint.tasks if t.name == "segmentation")
            classes = " | ".join(f"IoU {c}" for c in segmentation.classes)
            print(f"\nSegmentation at {FRAME[0]}x{FRAME[1]} on {args.quality_frames} held-out scenes:\n")
            print(f"| path | mIoU | {classes} |\n|---|---|" + "---|" * len(segmentation.classes))
            for row in quality_rows(checkpoint, folder, args.quality_frames):
                print(row)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
