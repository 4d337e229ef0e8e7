"""`edgemtl camera` as a call: one or several live sources through an exported model into outputs, and each
frame's results to a controller, until they end or are stopped. The runtime alone: no PyTorch."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgemtl import jsonfile
from edgemtl.runtime import Engine, EngineOptions, PipelineStats, open_output, open_source, run_pipeline
from edgemtl.runtime.multicam import MulticamStats, run_multicamera, source_outputs
from edgemtl.runtime.results_stream import open_results
from edgemtl.runtime.sinks import DISPLAY, DisplaySink, FrameSink
from edgemtl.runtime.steady import Smoothing, Steadier, check_smoothing, parse_smoothing
from edgemtl.runtime.tracking import SourceTracking, check_tracking


@dataclass(frozen=True)
class CameraRequest:
    """What `edgemtl camera` is given; sources and outputs are URIs (see `open_source`, `open_output`)."""

    source: str | tuple[str, ...]  # one or several: a camera index or /dev/videoN, a video, images, rtsp://, http(s)://
    model: Path  # an .onnx file written by `edgemtl export`
    # display, none, http://HOST:PORT (a web viewer), a video, a .mcap file or a folder; several sources:
    # out-0.mp4, out-1.mp4, … (a web viewer serves one source)
    output: str = "display"
    device: str = "auto"
    options: EngineOptions = field(default_factory=EngineOptions)
    live: bool | None = None  # newest frame only; None: for cameras and streams
    pace: bool = False  # read a video file at its own frame rate
    max_frames: int | None = None  # per source
    reconnects: int = 3  # stream reconnect attempts
    draw_stats: bool = True
    overwrite: bool = False  # replace an existing output video
    summary_json: Path | None = None  # where to write the summary, as JSON
    token: str | None = None  # the web viewer's shared secret; required when it binds beyond the loopback
    results: str | None = None  # per-frame JSON lines: a file, "-" (stdout), udp://HOST:PORT, zmq://HOST:PORT
    results_mask: str | None = None  # masks in the results lines: "rle" or "png" (None: not sent)
    smooth: tuple[Smoothing | str, ...] = ()  # steady decisions, one per task: Smoothing or "scene:ema=0.6,…"
    track: str | None = None  # track detected objects: "bytetrack" or "ocsort" (edgemtl.runtime.tracking)

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else tuple(self.source)


def run_camera(request: CameraRequest, status: Callable[[str], None] | None = None) -> PipelineStats | MulticamStats:
    """Run the pipeline (several sources: one batched engine run per tick); `status` gets the start line
    and a status line every few seconds. Bad settings fail before any source is opened."""
    engine = Engine(request.model, request.device, request.options)
    settings = [parse_smoothing(s) if isinstance(s, str) else s for s in request.smooth]
    check_smoothing(settings, engine.tasks, str(request.model))
    if request.track is not None:
        check_tracking(request.track, engine.tasks, str(request.model))
    uris = request.sources
    outputs = source_outputs(request.output, len(uris))
    with contextlib.ExitStack() as stack:
        frames = [
            stack.enter_context(open_source(uri, live=request.live, pace=request.pace, reconnects=request.reconnects))
            for uri in uris
        ]
        sinks = [
            stack.enter_context(_sink(out, source.fps, request, len(uris), i))
            for i, (out, source) in enumerate(zip(outputs, frames))
        ]
        results = stack.enter_context(open_results(request.results, request.results_mask)) if request.results else None
        steadiers = [Steadier(engine.tasks, settings, str(request.model)) if settings else None for _ in uris]
        trackings = [_tracking(engine, request, source.fps) for source in frames]  # each source its own tracks
        if status is not None:
            shown = getattr(sinks[0], "url", request.output)  # a viewer's address, with its token
            status(f"{' + '.join(uris)} -> {shown} on {engine.describe()}; Ctrl-C stops")
        common = {
            "max_frames": request.max_frames,
            "draw_stats": request.draw_stats,
            "report": status,
            "results": results,
        }
        if len(uris) == 1:
            summary: PipelineStats | MulticamStats = run_pipeline(
                engine,
                frames[0],
                sinks[0],
                output_name=request.output,
                steadier=steadiers[0],
                tracking=trackings[0],
                **common,
            )
        else:
            summary = run_multicamera(
                engine, frames, sinks, output_names=outputs, steadiers=steadiers, trackings=trackings, **common
            )
    if request.summary_json is not None:
        request.summary_json.write_text(jsonfile.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _tracking(engine: Engine, request: CameraRequest, fps: float | None) -> SourceTracking | None:
    """One source's trackers when `--track` was given (the source's frame rate scales how long a lost track
    is kept)."""
    if request.track is None:
        return None
    return SourceTracking(engine.tasks, request.track, frame_rate=fps, model=str(request.model))


def _sink(output: str, fps: float | None, request: CameraRequest, count: int, index: int) -> FrameSink:
    """A source's output; with several sources, each window is titled by its source."""
    if output == DISPLAY and count > 1:
        return DisplaySink(title=f"edgemtl [{index}] {request.sources[index]}")
    return open_output(output, fps=fps, overwrite=request.overwrite, token=request.token)
