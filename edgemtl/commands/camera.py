"""`edgemtl camera` as a call: a live source through an exported model into an output, until it ends or is
stopped. The runtime alone: no PyTorch."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgemtl.runtime import Engine, EngineOptions, PipelineStats, open_output, open_source, run_pipeline


@dataclass(frozen=True)
class CameraRequest:
    """What `edgemtl camera` is given; sources and outputs are URIs (see `open_source`, `open_output`)."""

    source: str  # a camera index or /dev/videoN, a video, an image, folder or glob, rtsp:// or http(s)://
    model: Path  # an .onnx file written by `edgemtl export`
    output: str = "display"  # display, none, http://HOST:PORT (a web viewer), a video, a .mcap file or a folder
    device: str = "auto"
    options: EngineOptions = field(default_factory=EngineOptions)
    live: bool | None = None  # newest frame only; None: for cameras and streams
    pace: bool = False  # read a video file at its own frame rate
    max_frames: int | None = None
    reconnects: int = 3  # stream reconnect attempts
    draw_stats: bool = True
    overwrite: bool = False  # replace an existing output video
    summary_json: Path | None = None  # where to write the summary, as JSON
    token: str | None = None  # the web viewer's shared secret; required when it binds beyond the loopback


def run_camera(request: CameraRequest, status: Callable[[str], None] | None = None) -> PipelineStats:
    """Run the pipeline; `status` gets the start line and a status line every few seconds."""
    engine = Engine(request.model, request.device, request.options)
    source_uri = request.source
    with (
        open_source(source_uri, live=request.live, pace=request.pace, reconnects=request.reconnects) as frames,
        open_output(request.output, fps=frames.fps, overwrite=request.overwrite, token=request.token) as sink,
    ):
        if status is not None:
            status(f"{source_uri} -> {getattr(sink, 'url', request.output)} on {engine.describe()}; Ctrl-C stops")
        summary = run_pipeline(
            engine,
            frames,
            sink,
            max_frames=request.max_frames,
            draw_stats=request.draw_stats,
            report=status,
            output_name=request.output,
        )
    if request.summary_json is not None:
        request.summary_json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary
