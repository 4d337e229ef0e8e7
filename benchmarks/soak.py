"""Memory over a long run: 20,000 frames through one camera pipeline, resident memory (RSS) sampled as it goes.

A synthetic 640x480 drive video is decoded again and again (the source reopens it at its end), so the
real decode → resize → infer → overlay → output path runs the whole time. RSS must stay flat: the
pipeline reuses its buffers and keeps latency statistics in constant memory.

    python benchmarks/soak.py [--frames 20000] [--model nav.onnx] [--output none|out.mp4|folder]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgemtl.commands.bench import write_drive_video
from edgemtl.machine import describe_machine
from edgemtl.runtime import Engine, EngineOptions, Frame, open_output, run_pipeline
from edgemtl.runtime.sources import FrameSource, VideoSource

_CLIP_FRAMES = 500


class LoopedVideo(FrameSource):
    """A video file read from the start again each time it ends, with frame indices running on."""

    def __init__(self, path: Path) -> None:
        self.path, self.uri = path, str(path)
        self.video = VideoSource(self.uri, self.uri)
        self.fps, self.size = self.video.fps, self.video.size
        self.offset = 0

    def read(self) -> Frame | None:
        frame = self.video.read()
        if frame is None:
            self.offset += self.video.frame_count or 0
            self.video.close()
            self.video = VideoSource(self.uri, self.uri)
            frame = self.video.read()
        return Frame(self.offset + frame.index, frame.name, frame.image, frame.timestamp)

    def close(self) -> None:
        self.video.close()


def rss_mib() -> float:
    """Resident set size now (not the peak), from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--model", type=Path, default=None, help="default: a random-weight nano export")
    parser.add_argument("--output", default="none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model
        if model is None:
            from speed import export_random

            model, _ = export_random("nano", Path(folder))
        video = write_drive_video(Path(folder) / "drive.mp4", _CLIP_FRAMES, (480, 640))
        engine = Engine(model, "cpu", EngineOptions(threads=1, spinning=False))
        samples = [(0, rss_mib())]

        def sample(line: str) -> None:
            samples.append((int(line.split()[0]), rss_mib()))

        with LoopedVideo(video) as source, open_output(args.output, fps=source.fps) as sink:
            stats = run_pipeline(engine, source, sink, max_frames=args.frames, report=sample, report_every_s=5)
        samples.append((stats.frames, rss_mib()))
    print(f"Machine: {describe_machine()}")
    print(f"{stats.describe()}; engine {engine.describe()}; output {args.output}")
    print()
    print("| frames | RSS (MiB) |")
    print("|---|---|")
    for frames, rss in samples:
        print(f"| {frames} | {rss:.1f} |")
    growth = samples[-1][1] - samples[1][1] if len(samples) > 2 else 0.0
    print(
        f"\nRSS at start {samples[0][1]:.1f} MiB, after the first report {samples[1][1]:.1f} MiB, "
        f"at the end {samples[-1][1]:.1f} MiB: {growth:+.1f} MiB after warm-up"
    )


if __name__ == "__main__":
    main()
