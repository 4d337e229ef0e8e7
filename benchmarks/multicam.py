"""Several cameras batched into one engine vs one pipeline per camera (issue 14: target ≥ 1.5× in total).

Four synthetic drive videos (480x640 by default) through a random-weight nano export, three ways, on
the same machine, interleaved (the order rotates each repeat) and repeated (medians reported):

    batched      one `edgemtl camera A B C D` pipeline: the newest frame of each source in one run per tick
    sequential   four one-camera pipelines run one after another (total frames / the sum of their times)
    concurrent   four one-camera pipelines in four processes at once, started together on a wall-clock mark
                 (total frames / first start to last end)

Every pipeline writes to `none` (the decode, model and overlay run; no file is written) with the camera's
defaults (ORT threads one per core, not spinning). Per-source p99 capture-to-output latency is reported.

    python benchmarks/multicam.py [--frames 300] [--repeats 3] [--size 480x640] [--preset nano]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgemtl.commands.bench import write_drive_video
from edgemtl.machine import describe_machine, load_average
from edgemtl.runtime import Engine, EngineOptions, open_output, open_source, run_pipeline
from edgemtl.runtime.multicam import run_multicamera

CAMERA = EngineOptions(spinning=False)  # what `edgemtl camera` runs with
DEVICE = "cpu"  # --device: where every engine runs (the children of `concurrent` are told too)


def batched(model: Path, videos: list[Path]) -> dict:
    engine = Engine(model, DEVICE, CAMERA)
    sources = [open_source(v) for v in videos]
    stats = run_multicamera(engine, sources, [open_output("none") for _ in videos], report=None)
    for source in sources:
        source.close()
    p99 = [s.latency_ms["p99"] for s in stats.sources]
    return {"fps": stats.fps, "p99": p99, "batch": stats.frames / stats.ticks}


def one(model: Path, video: Path, start_at: float = 0.0) -> dict:
    """One camera's pipeline; `start_at` (wall clock): load and warm up first, then wait for the mark."""
    engine = Engine(model, DEVICE, CAMERA)
    engine.warmup()
    with open_source(video) as source, open_output("none") as sink:
        time.sleep(max(0.0, start_at - time.time()))
        began = time.time()
        stats = run_pipeline(engine, source, sink, report=None)
    return {
        "frames": stats.frames,
        "seconds": stats.seconds,
        "began": began,
        "ended": time.time(),
        "p99": stats.latency_ms["p99"],
    }


def sequential(model: Path, videos: list[Path]) -> dict:
    runs = [one(model, v) for v in videos]
    return {"fps": sum(r["frames"] for r in runs) / sum(r["seconds"] for r in runs), "p99": [r["p99"] for r in runs]}


def concurrent(model: Path, videos: list[Path]) -> dict:
    mark = time.time() + 4.0  # time for every child to import, load and warm up before the start
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--device", DEVICE, "--one", str(model), str(video), str(mark)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for video in videos
    ]
    runs = [json.loads(child.communicate()[0]) for child in children]
    late = [r for r in runs if r["began"] > mark + 0.5]
    span = max(r["ended"] for r in runs) - min(r["began"] for r in runs)
    return {"fps": sum(r["frames"] for r in runs) / span, "p99": [r["p99"] for r in runs], "late": len(late)}


def stages(model: Path, video: Path) -> dict[str, float]:
    """Milliseconds per frame of each stage, interleaved: where a batched tick can and cannot save time."""
    import cv2
    import numpy as np

    from edgemtl.runtime import Overlay
    from edgemtl.runtime.timing import median_ms, time_interleaved

    engine = Engine(model, DEVICE, CAMERA)
    height, width = engine.input_size
    one_frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), np.uint8)
    four = np.repeat(one_frame, 4, axis=0)
    capture = cv2.VideoCapture(str(video))
    frame = capture.read()[1]
    prediction, overlay = engine.predict(frame), Overlay()

    def decode() -> None:
        if not capture.read()[0]:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    timings = time_interleaved(
        {
            "decode": decode,
            "resize to the model": lambda: engine.prepare(frame),
            "model, batch 1": lambda: engine.run(one_frame),
            "model, batch 4 (per frame)": lambda: engine.run(four),
            "predict (resize, model, mask at frame size)": lambda: engine.predict(frame),
            "overlay": lambda: overlay.render(frame, prediction),
        },
        runs=100,
    )
    capture.release()
    result = {name: median_ms(t) for name, t in timings.items()}
    result["model, batch 4 (per frame)"] /= 4
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="frames per source")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="480x640", help="HxW of the videos")
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, tensorrt")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # a child of `concurrent`
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.one:
        print(json.dumps(one(Path(args.one[0]), Path(args.one[1]), float(args.one[2]))))
        return
    height, width = (int(v) for v in args.size.split("x"))
    ways = {"batched": batched, "sequential": sequential, "concurrent": concurrent}
    results: dict[str, list[dict]] = {name: [] for name in ways}
    loads = [load_average()]
    from speed import export_random  # PyTorch: here, not in the children of `concurrent`

    with tempfile.TemporaryDirectory() as folder:
        model, _ = export_random(args.preset, Path(folder))
        videos = [write_drive_video(Path(folder) / f"cam{i}.mp4", args.frames, (height, width)) for i in range(4)]
        for repeat in range(args.repeats):
            order = list(ways)[repeat % 3 :] + list(ways)[: repeat % 3]  # interleaved: each way goes first once
            for name in order:
                results[name].append(ways[name](model, videos))
            loads.append(load_average())
        costs = stages(model, videos[0])
    print(f"machine: {describe_machine()}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load during the runs: {' | '.join(loads)}")
    sizes = f"{args.frames} frames each, {height}x{width}"
    print(f"4 sources, {sizes}, {args.preset} on device {DEVICE}, {args.repeats} repeats")
    print("| way | total FPS (median) | each repeat | batched ÷ this | per-source p99 ms (median) |")
    print("|---|---|---|---|---|")
    best = statistics.median(r["fps"] for r in results["batched"])
    for name, runs in results.items():
        fps = statistics.median(r["fps"] for r in runs)
        p99 = [statistics.median(r["p99"][i] for r in runs) for i in range(4)]
        each = ", ".join(f"{r['fps']:.1f}" for r in runs)
        print(f"| {name} | {fps:.1f} | {each} | {best / fps:.2f}x | {' / '.join(f'{v:.0f}' for v in p99)} |")
    batches = [r["batch"] for r in results["batched"]]
    print(f"batched: {statistics.median(batches):.2f} frames a tick (median)")
    print("| stage | ms per frame (median of 100, interleaved) |")
    print("|---|---|")
    for name, value in costs.items():
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
