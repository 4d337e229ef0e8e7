"""The commands that run a model: eval, info, predict, camera, bench. Only eval of a checkpoint loads PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgemtl import jsonfile
from edgemtl.cli.options import (
    deprecated,
    echo_err,
    engine_options,
    is_model_file,
    make_engine_options,
    model_option,
    output_option,
    outside_paths_option,
    parse_size,
    runtime_device_option,
    status_echo,
    verbose,
)
from edgemtl.errors import ConfigError


@click.command("eval")
@click.argument("data", required=False)
@model_option("A checkpoint (.pt, run in PyTorch) or an export (.onnx, run in ONNX Runtime).", required=False)
@click.option("--data", "data_option", default=None, hidden=True)  # the older spelling: eval MODEL --data DATA
@click.option(
    "--split",
    type=click.Choice(["all", "train", "val", "test"]),
    default=None,
    help="The samples of DATA's split column to score; train/val without val rows: training's seeded holdout; "
    "test without test rows: an error [all; synthetic: test].",
)
@click.option("--frames", type=click.IntRange(1), default=400, show_default=True, help="Synthetic scenes.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="The run's seed: its synthetic scenes, its holdout."
)
@runtime_device_option
@output_option("runs/eval/exp", "Output folder (a new numbered one if it exists).")
@outside_paths_option
def eval_command(
    data: str | None,
    model: Path | None,
    data_option: str | None,
    split: str | None,
    frames: int,
    seed: int,
    device: str,
    output: str,
    allow_outside_paths: bool,
) -> None:
    """Per-task metrics of a model on labelled DATA: 'synthetic' (held-out scenes) or a dataset folder or
    manifest. Without DATA: a checkpoint trained on a folder or manifest scores the frames that validated
    it, a model of the synthetic tasks the held-out scenes. Prints a table (naming the split it scored) and
    writes metrics.json, confusion matrices, per-class scores and a prediction grid.
    """
    from edgemtl.commands.evaluate import EvalRequest, run_eval

    if model is None and data is not None and is_model_file(data):
        deprecated("edgemtl eval MODEL --data DATA", "edgemtl eval DATA -m MODEL")
        model, data = Path(data), data_option
    if model is None:
        raise ConfigError("no model given: expected -m MODEL, a checkpoint (.pt) or an export (.onnx)")
    request = EvalRequest(
        model,
        data or data_option,
        frames,
        seed,
        device,
        Path(output),
        allow_outside_paths=allow_outside_paths,
        split=split,
    )
    report = run_eval(request)
    for line in report.lines():
        click.echo(line)
    click.echo(f"metrics.json and plots in {report.out_dir}")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
def info(model: Path) -> None:
    """What an .onnx file is: tasks, classes, input, precision, metrics, version."""
    from edgemtl.commands.info import describe_model

    for line in describe_model(model):
        click.echo(line)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@model_option(required=False)
@output_option("runs/predict/exp", "Output folder (a new numbered one if it exists).")
@runtime_device_option
@click.option("--masks/--no-masks", default=True, help="Save masks as indexed PNGs (image sources).")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", help="A table's predictions [jsonl]."
)
def predict(sources: tuple[str, ...], model: Path | None, output: str, device: str, masks: bool, fmt: str) -> None:
    """Run a model on SOURCE (an image, folder, glob or video): overlays, masks and predictions.jsonl.
    A vector model reads SOURCE as a CSV or Parquet table of feature rows: one prediction per row (--format)."""
    from edgemtl.commands.predict import PredictRequest, run_predict

    if model is None and len(sources) == 2 and is_model_file(sources[0]):
        deprecated("edgemtl predict MODEL SOURCE --out DIR", "edgemtl predict SOURCE -m MODEL -o DIR")
        model, sources = Path(sources[0]), sources[1:]
    if model is None:
        raise ConfigError("no model given: expected -m MODEL, an .onnx file written by `edgemtl export`")
    if len(sources) != 1:
        raise ConfigError(f"predict takes one SOURCE, got {len(sources)}: {' '.join(sources)}")
    summary = run_predict(PredictRequest(sources[0], model, Path(output), device, masks, format=fmt))
    click.echo(summary.describe())


@click.command()
@click.argument("sources", nargs=-1, required=True)
@model_option()
@click.option(
    "-o",
    "--output",
    default="display",
    show_default=True,
    help="display, none, http://HOST:PORT (web viewer), a video (.mp4/.avi/.mkv), a .mcap recording or a folder.",
)
@click.option(
    "--token",
    envvar="EDGEMTL_VIEWER_TOKEN",
    default=None,
    help="The web viewer's secret (?token= or X-Edgemtl-Token); needed off 127.0.0.1 [$EDGEMTL_VIEWER_TOKEN].",
)
@runtime_device_option
@engine_options(spinning=False)
@click.option("--live/--no-live", default=None, help="Newest frame only, stale ones dropped [cameras, streams].")
@click.option("--pace/--no-pace", default=False, help="Read a video file at its own frame rate.")
@click.option(
    "--frames", "max_frames", type=click.IntRange(1), default=None, help="Stop after this many frames (per source)."
)
@click.option("--reconnects", type=click.IntRange(0), default=3, show_default=True, help="Stream reconnect attempts.")
@click.option("--stats/--no-stats", "draw_stats", default=True, help="Draw FPS and latency on the frames.")
@click.option("--json", "summary_json", type=click.Path(path_type=Path), default=None, help="Write the summary here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output video or recording.")
@click.option(
    "--results", default=None, help="Per-frame JSON lines: FILE, - (stdout), udp://HOST:PORT, zmq://HOST:PORT."
)
@click.option("--results-mask", type=click.Choice(["rle", "png"]), default=None, help="Send masks in --results.")
@click.option(
    "--smooth",
    multiple=True,
    help="Steady a task's label: TASK:ema=0.6,dwell=3,latch=CLASS:N; objects: TASK:latch=CLASS:N [repeat].",
)
@click.option(
    "--track",
    is_flag=False,
    flag_value="bytetrack",
    default=None,
    metavar="[NAME]",
    help="Give each detected object a stable id across frames: bytetrack (the default) or ocsort.",
)
def camera(sources: tuple[str, ...], **flags: Any) -> None:
    """Live: cameras, streams or files → model → overlay → window, web viewer, video, MCAP, folder or nothing.

    SOURCES: a camera index (0) or /dev/videoN, a video file, an image, folder or glob, rtsp:// or http(s)://.
    Several sources share one engine (one batched run per tick); each gets its own output (out-0.mp4, …).
    """
    from edgemtl.commands.camera import CameraRequest, run_camera
    from edgemtl.errors import SourceError
    from edgemtl.runtime.multicam import MulticamStats

    options = make_engine_options(flags)
    to_stdout = flags["results"] == "-"  # stdout carries the results: human text goes to stderr, with -v only
    status = (echo_err if verbose() else None) if to_stdout else status_echo()
    summary = run_camera(CameraRequest(sources if len(sources) > 1 else sources[0], options=options, **flags), status)
    lines = summary.lines()
    lines[0] = ("stopped: " if summary.interrupted else "") + lines[0]
    if not to_stdout or verbose():
        for line in lines:
            click.echo(line, err=to_stdout)
    if isinstance(summary, MulticamStats) and summary.all_died:
        raise SourceError(f"every source stopped early: {'; '.join(s.error for s in summary.sources)}")


@click.command()
@click.argument("sources", nargs=-1)
@click.option("-m", "--model", "models", multiple=True, type=click.Path(path_type=Path), help="An .onnx file [repeat].")
@click.option(
    "--device", "devices", multiple=True, help="cpu, cuda, tensorrt, auto, openvino[:DEVICE][:PRECISION] [all here]"
)
@engine_options(spinning=True)
@click.option(
    "--batch", "batches", multiple=True, type=click.IntRange(1), default=(1,), show_default=True, help="Batch size."
)
@click.option(
    "--runs", type=click.IntRange(10), default=200, show_default=True, help="Timed calls per row (10 or more)."
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="Adds PyTorch eager rows (an .onnx file holds no weights PyTorch runs).",
)
@click.option("--video", type=click.Path(path_type=Path), default=None, hidden=True)  # older spelling of SOURCE
@click.option("--frame-size", default="480x640", show_default=True, help="Camera frame HxW for end-to-end rows.")
@click.option(
    "--pipeline-frames",
    type=click.IntRange(0),
    default=500,
    show_default=True,
    help="Frames for the pipeline rows; 0: none.",
)
@click.option("-o", "--output", "--json", "output", type=click.Path(path_type=Path), help="Write the results as JSON.")
def bench(
    sources: tuple[str, ...],
    models: tuple[Path, ...],
    video: Path | None,
    frame_size: str,
    output: Path | None,
    **flags: Any,
) -> None:
    """Latency and throughput of models (-m, repeatable) per provider and batch, end to end, and in the
    pipeline on SOURCE (a video; default: a synthetic drive)."""

    from edgemtl.commands.bench import bench_devices, run_bench

    named_models = [Path(s) for s in sources if is_model_file(s)]
    if named_models:
        deprecated("edgemtl bench MODEL...", "edgemtl bench [VIDEO] -m MODEL [-m MODEL]")
    models = (*models, *named_models)
    videos = [Path(s) for s in sources if not is_model_file(s)] + ([video] if video else [])
    if not models:
        raise ConfigError("no model given: expected -m MODEL (repeatable), an .onnx file written by `edgemtl export`")
    if len(videos) > 1:
        raise ConfigError(f"bench takes one SOURCE video, got {len(videos)}: {' '.join(map(str, videos))}")
    report = run_bench(
        list(models),
        devices=flags.pop("devices") or bench_devices(),
        options=make_engine_options(flags),
        video=videos[0] if videos else None,
        frame_size=parse_size(frame_size) or (480, 640),
        **flags,
    )
    for line in report.lines():
        click.echo(line)
    if output:
        output.write_text(jsonfile.dumps(report.to_dict(), indent=2) + "\n")
