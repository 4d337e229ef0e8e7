"""What one web viewer costs the pipeline: throughput with a viewer attached vs the same run with `-o none`.

A random-weight export of the preset runs on a synthetic drive video (looped), one inference thread that
sleeps when idle, as in soak.py. Each repeat runs both, taking turns in alternating order, so the shared
machine's drift hits both alike; the table gives each repeat and the medians. The viewer is a headless
client (benchmarks/watcher.py, a process of its own, as a browser is) on this same machine, pulling the
WebSocket stream a browser would: its CPU is taken from the pipeline's two cores, so the figure is
conservative. Target: ≥ 95 %.

    python benchmarks/viewer_cost.py [--preset nano] [--size 480x640] [--frames 1500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from soak import LoopedVideo
from speed import export_random
from watcher import Watcher, free_port

from edgemtl.commands.bench import write_drive_video
from edgemtl.machine import describe_machine
from edgemtl.runtime import Engine, EngineOptions, open_output, run_pipeline
from edgemtl.runtime.viewer import open_viewer


def run(engine: Engine, video: Path, frames: int, viewer_fps: float) -> tuple[float, float, int]:
    """(frames per second, CPU ms per frame, frames the viewer received); viewer_fps 0: `-o none`."""
    viewer = viewer_fps > 0
    uri = f"http://127.0.0.1:{free_port()}" if viewer else "none"
    sink = open_viewer(uri, max_fps=viewer_fps) if viewer else open_output(uri)
    with LoopedVideo(video) as source, sink:
        watcher = Watcher(uri) if viewer else None
        if watcher is not None:
            watcher.wait_attached(sink)
        start = time.process_time()  # every thread of this process: pipeline and server
        stats = run_pipeline(engine, source, sink, max_frames=frames, report=None)
        cpu_s = time.process_time() - start
        if watcher is not None:
            watcher.close()
            cpu_s += watcher.cpu_s  # the watching, as a browser's share of the device
        cpu_ms = cpu_s / stats.frames * 1e3
    return stats.fps, cpu_ms, watcher.frames if watcher else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="nano")
    parser.add_argument("--size", default="480x640", help="camera frame HxW")
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--viewer-fps", type=float, nargs="+", default=[15.0, 30.0], help="the viewer's frame cap(s)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model, _ = export_random(args.preset, Path(folder))
        video = write_drive_video(Path(folder) / "drive.mp4", 300, size)
        engine = Engine(model, "cpu", EngineOptions(threads=1, spinning=False))
        run(engine, video, 200, 0)  # warm caches and the decoder before anything is timed
        modes = [0.0, *args.viewer_fps]
        loads = [os.getloadavg()[0]]
        for repeat in range(args.repeats):
            order = modes[repeat % len(modes) :] + modes[: repeat % len(modes)]  # each mode leads in turn
            results = {mode: run(engine, video, args.frames, mode) for mode in order}
            rows.append(results)
            loads.append(os.getloadavg()[0])
    print(f"Machine: {describe_machine()}")
    print(f"{args.preset}, {size[0]}x{size[1]} frames, {args.frames} frames a run; engine {engine.describe()}")
    print(f"load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    print()
    viewers = args.viewer_fps
    head = " | ".join(f"viewer ≤{v:g}/s: FPS (% of none), CPU ms/frame, frames sent" for v in viewers)
    print(f"| repeat | -o none: FPS, CPU ms/frame | {head} |")
    print("|---|---|" + "---|" * len(viewers))
    for index, results in enumerate(rows, 1):
        none = results[0.0]
        cells = [
            f"{results[v][0]:.1f} ({results[v][0] / none[0]:.0%}), {results[v][1]:.2f}, {results[v][2]}"
            for v in viewers
        ]
        print(f"| {index} | {none[0]:.1f}, {none[1]:.2f} | " + " | ".join(cells) + " |")
    fps_ratio = {v: statistics.median(r[v][0] / r[0.0][0] for r in rows) for v in viewers}
    cpu_ratio = {v: statistics.median(r[0.0][1] / r[v][1] for r in rows) for v in viewers}
    none_fps, none_cpu = statistics.median(r[0.0][0] for r in rows), statistics.median(r[0.0][1] for r in rows)
    cells = [f"{fps_ratio[v]:.1%} of none's FPS; CPU-bound estimate {cpu_ratio[v]:.1%}" for v in viewers]
    print(f"| median | {none_fps:.1f}, {none_cpu:.2f} | " + " | ".join(cells) + " |")
    print(
        "\nCPU-bound estimate: CPU ms per frame without the viewer / with it (this process's threads and the"
        " watcher's): the throughput ratio on a device whose cores the pipeline has to itself."
    )
    for v in viewers:
        verdict = "met" if fps_ratio[v] >= 0.95 else "NOT met"
        print(
            f"viewer capped at {v:g}/s: measured {fps_ratio[v]:.1%} (target ≥ 95 % {verdict}), CPU {cpu_ratio[v]:.1%}"
        )


if __name__ == "__main__":
    main()
