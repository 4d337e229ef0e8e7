"""Memory over a long run: 20,000 frames through one camera pipeline, resident memory (RSS) sampled as it goes.

A synthetic drive video (480x640 unless --size) is decoded again and again (the source reopens it at its
end), so the real decode → resize → infer → overlay → output path runs the whole time. RSS must stay
flat: the pipeline reuses its buffers and keeps latency statistics in constant memory.

`--viewer` adds the web viewer with one headless client (a process) pulling its stream (benchmarks/watcher.py), and
`--mcap` an MCAP recording of every frame (read back at the end: its summary must count every frame), all
on one pipeline (edgemtl.runtime.tee.TeeSink); `--results` sends every frame's results line too (a UDP
receiver on this machine counts the datagrams).

    python benchmarks/soak.py [--frames 20000] [--model nav.onnx] [--output none|out.mp4|folder]
    python benchmarks/soak.py --size 120x160 --viewer --mcap --results   # the issue 14 soak
    python benchmarks/soak.py --frames 10000 --tracemalloc [--frame-sized [--overlay]]   # the issue 15 check

`--frame-sized` exports the random-weight model at the video's frame size (the resize, the mask's upsampling
and, with `--overlay`, the blend inside the graph: docs/export.md); `--tracemalloc` traces Python's and
NumPy's allocations and prints what is still allocated after warm-up and at the end, with the lines that
grew most: memory that a frame allocates and does not give back shows there, one line per site.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

from watcher import Watcher, free_port

from edgemtl.commands.bench import write_drive_video
from edgemtl.machine import describe_machine
from edgemtl.runtime import Engine, EngineOptions, Frame, open_output, run_pipeline
from edgemtl.runtime.buffers import BufferPool
from edgemtl.runtime.results_stream import open_results
from edgemtl.runtime.sources import FrameSource, VideoSource
from edgemtl.runtime.tee import TeeSink

_CLIP_FRAMES = 500


class LoopedVideo(FrameSource):
    """A video file read from the start again each time it ends, with frame indices running on."""

    def __init__(self, path: Path) -> None:
        self.path, self.uri = path, str(path)
        self.video = VideoSource(self.uri, self.uri)
        self.fps, self.size = self.video.fps, self.video.size
        self.offset = 0
        self.pool: BufferPool | None = None

    def use_pool(self, pool: BufferPool | None) -> None:
        self.pool = pool
        self.video.use_pool(pool)

    def read(self) -> Frame | None:
        frame = self.video.read()
        if frame is None:
            self.offset += self.video.frame_count or 0
            self.video.close()
            self.video = VideoSource(self.uri, self.uri)
            self.video.use_pool(self.pool)
            frame = self.video.read()
        return Frame(self.offset + frame.index, frame.name, frame.image, frame.timestamp)

    def close(self) -> None:
        self.video.close()


def rss_mib() -> float:
    """Resident set size now (not the peak), from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


class UdpCounter:
    """A controller stand-in: counts the results datagrams that arrive, on a thread."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.5)
        self.port, self.count, self.running = self.socket.getsockname()[1], 0, True
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.thread.start()

    def _count(self) -> None:
        while self.running:
            with contextlib.suppress(TimeoutError):
                self.socket.recv(65536)
                self.count += 1

    def close(self) -> int:
        time.sleep(1.0)  # the last datagrams in flight
        self.running = False
        self.thread.join()
        self.socket.close()
        return self.count


def mcap_frames(path: Path) -> tuple[int, int]:
    """(messages on /camera/image by the file's summary, file size): the recording is whole and complete."""
    from mcap.reader import make_reader

    with open(path, "rb") as stream:
        summary = make_reader(stream).get_summary()
    topics = {summary.channels[c].topic: n for c, n in summary.statistics.channel_message_counts.items()}
    return topics["/camera/image"], path.stat().st_size


class TracedMemory:
    """Traced allocations (tracemalloc) at warm-up and at the run's last report, while frames are in flight,
    and the sites that grew between the two."""

    def __init__(self) -> None:
        self.warm: tracemalloc.Snapshot | None = None
        self.last: tracemalloc.Snapshot | None = None
        self.warm_bytes = self.last_bytes = 0
        self.warm_frames = self.last_frames = 0

    def sample(self, frames: int) -> None:
        if not tracemalloc.is_tracing():
            return
        snapshot, traced = tracemalloc.take_snapshot(), tracemalloc.get_traced_memory()[0]
        if self.warm is None:
            self.warm, self.warm_bytes, self.warm_frames = snapshot, traced, frames
        else:
            self.last, self.last_bytes, self.last_frames = snapshot, traced, frames

    def report(self) -> list[str]:
        if self.warm is None or self.last is None:
            return []
        lines = [
            f"traced (tracemalloc): {self.warm_bytes / 2**20:.2f} MiB at frame {self.warm_frames}, "
            f"{self.last_bytes / 2**20:.2f} MiB at frame {self.last_frames}: "
            f"{(self.last_bytes - self.warm_bytes) / 2**10:+.1f} KiB; the sites that grew most:"
        ]
        for stat in self.last.compare_to(self.warm, "lineno")[:5]:
            lines.append(f"  {stat.size_diff / 2**10:+.1f} KiB in {stat.count_diff:+d} blocks at {stat.traceback[0]}")
        return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--model", type=Path, default=None, help="default: a random-weight nano export")
    parser.add_argument("--output", default="none")
    parser.add_argument("--size", default="480x640", help="the drive video's HxW")
    parser.add_argument("--viewer", action="store_true", help="also serve the web viewer, one client watching")
    parser.add_argument("--mcap", action="store_true", help="also record every frame to MCAP")
    parser.add_argument("--results", action="store_true", help="also send results to udp://127.0.0.1 (counted)")
    parser.add_argument("--frame-sized", action="store_true", help="export at the video's frame size")
    parser.add_argument("--overlay", action="store_true", help="with --frame-sized: the overlay inside the graph")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations (slower; see above)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from speed import export_random

            from edgemtl.deploy import ExportOptions

            sized = ExportOptions(frame_size=size, overlay=args.overlay) if args.frame_sized else None
            model, _ = export_random("nano", Path(folder), sized)
        video = write_drive_video(Path(folder) / "drive.mp4", _CLIP_FRAMES, size)
        engine = Engine(model, "cpu", EngineOptions(threads=1, spinning=False))
        samples = [(0, rss_mib())]
        traced = TracedMemory()
        if args.tracemalloc:
            tracemalloc.start()

        def sample(line: str) -> None:
            samples.append((int(line.split()[0]), rss_mib()))
            if len(samples) >= 3:  # from the report 5 s in: imports and first-use buffers are done
                traced.sample(samples[-1][0])

        outputs = [args.output] + ([f"http://127.0.0.1:{free_port()}"] if args.viewer else [])
        outputs += [str(Path(folder) / "soak.mcap")] if args.mcap else []
        load = os.getloadavg()[0]
        receiver = UdpCounter() if args.results else None
        results = open_results(f"udp://127.0.0.1:{receiver.port}") if receiver else None
        with (
            LoopedVideo(video) as source,
            TeeSink([open_output(o, fps=source.fps) for o in outputs]) as sink,
            results or contextlib.nullcontext(),
        ):
            watcher = Watcher(outputs[1]) if args.viewer else None
            if watcher is not None:
                watcher.wait_attached(sink.sinks[1])
            stats = run_pipeline(
                engine, source, sink, max_frames=args.frames, report=sample, report_every_s=5, results=results
            )
            samples.append((stats.frames, rss_mib()))
            traced_lines = traced.report()
            tracemalloc.stop()
            if watcher is not None:
                watcher.close()
        recorded = mcap_frames(Path(outputs[-1])) if args.mcap else None
    print(f"Machine: {describe_machine()}")
    print(f"load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print(f"{size[0]}x{size[1]} frames; {stats.describe()}; engine {engine.describe()}; outputs {', '.join(outputs)}")
    print(f"arrays the pool allocated (decoded, resized, graph outputs): {stats.buffers} for {stats.frames} frames")
    if watcher is not None:
        print(f"the viewer's client received {watcher.frames} frames ({watcher.bytes / 2**20:.0f} MiB of JPEG)")
    if receiver is not None:
        print(f"results: {receiver.close()} datagrams received on udp://127.0.0.1:{receiver.port}")
    if recorded is not None:
        print(f"the MCAP recording holds {recorded[0]} frames per image topic, {recorded[1] / 2**20:.0f} MiB")
    for line in traced_lines:
        print(line)
    print()
    print("| frames | RSS (MiB) |")
    print("|---|---|")
    for frames, rss in samples:
        print(f"| {frames} | {rss:.1f} |")
    warm = samples[2] if len(samples) > 3 else samples[-1]  # the report 5 s in
    print(
        f"\nRSS at start {samples[0][1]:.1f} MiB, at frame {warm[0]} (5 s in) {warm[1]:.1f} MiB, "
        f"at the end {samples[-1][1]:.1f} MiB: {samples[-1][1] - warm[1]:+.1f} MiB after warm-up"
    )


if __name__ == "__main__":
    main()
