"""The `edgemtl` command: thin wrappers over the library, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgemtl import __version__
from edgemtl.errors import ConfigError, EdgemtlError, ForeignModelError

if TYPE_CHECKING:
    from edgemtl.data import ArrayDataset
    from edgemtl.tasks import TaskSpec

DEFAULT_SYNTHETIC_TRAIN, DEFAULT_SYNTHETIC_VAL = 3000, 400


class EdgemtlGroup(click.Group):
    """Turns every EdgemtlError into one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgemtlError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a full disk or a read-only folder met while writing
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None
        except KeyboardInterrupt:
            click.echo("interrupted; files written so far are complete", err=True)
            sys.exit(130)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'128' → (128, 128); '96x160' → (96, 160) as height x width."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise ConfigError(f"input size {text!r} is not understood: expected N or HxW, e.g. 128 or 96x160")
    return parts[0], parts[1]


def load_data(
    spec: str, size: tuple[int, int], count: int, seed: int, tasks: tuple[TaskSpec, ...] | None = None
) -> ArrayDataset:
    """`synthetic` → generated navigation scenes; anything else → a dataset folder."""
    if spec == "synthetic":
        from edgemtl.data.synthetic import make_dataset

        return make_dataset(count, size, seed=seed)
    from edgemtl.data.folder import load_folder

    return load_folder(Path(spec), tasks, size)


def out_option(default: str) -> Callable:
    return click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=Path(default),
        show_default=True,
        help="Output folder (a new numbered one if it exists, so nothing is overwritten).",
    )


device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Where to run."
)
seed_option = click.option("--seed", type=int, default=0, show_default=True)
progress_option = click.option("--progress/--no-progress", default=True, help="Show progress bars.")


@click.group(cls=EdgemtlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgemtl")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def main(verbose: bool) -> None:
    """edgemtl: train a multi-task vision net, export it to ONNX, run it on camera frames."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@main.command()
@out_option("runs/demo")
@click.option("--epochs", type=click.IntRange(1), default=12, show_default=True)
@click.option(
    "--train-size",
    type=click.IntRange(8),
    default=DEFAULT_SYNTHETIC_TRAIN,
    show_default=True,
    help="Synthetic training scenes.",
)
@click.option("--video-frames", type=click.IntRange(1), default=300, show_default=True)
@seed_option
@device_option
@progress_option
def demo(out: Path, epochs: int, train_size: int, video_frames: int, seed: int, device: str, progress: bool) -> None:
    """The whole path on the CPU in minutes: synthetic data → train nano → export → run on a video."""
    from edgemtl.demo import DemoConfig, run_demo
    from edgemtl.paths import fresh_dir

    out = fresh_dir(out)
    config = DemoConfig(epochs=epochs, train_size=train_size, video_frames=video_frames, seed=seed, device=device)
    report = run_demo(out, config, progress=progress, log=click.echo)
    click.echo("")
    click.echo((out / "report.md").read_text())
    click.echo(f"done in {report.seconds['total']} s; everything is in {out}")


@main.command("train")
@click.option(
    "--data",
    default="synthetic",
    show_default=True,
    help="'synthetic', or a dataset folder (images/, masks/, labels.csv, tasks.json).",
)
@click.option("--val-data", default=None, help="Validation folder; default: synthetic, or 10% of --data.")
@click.option("--preset", default="nano", show_default=True, help="nano, small or base.")
@click.option("--input-size", default=None, help="HxW or N; default: the preset's.")
@click.option("--epochs", type=click.IntRange(1), default=12, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=4e-3, show_default=True)
@click.option(
    "--train-size",
    type=click.IntRange(1),
    default=DEFAULT_SYNTHETIC_TRAIN,
    show_default=True,
    help="Synthetic scenes to train on.",
)
@click.option("--weighting", default="fixed", show_default=True, help="Task weighting method.")
@click.option("--skips/--no-skips", default=True, help="Encoder skips into the segmentation decoder.")
@seed_option
@device_option
@out_option("runs/train/exp")
@progress_option
def train_command(
    data: str,
    val_data: str | None,
    preset: str,
    input_size: str | None,
    epochs: int,
    batch_size: int,
    lr: float,
    train_size: int,
    weighting: str,
    skips: bool,
    seed: int,
    device: str,
    out: Path,
    progress: bool,
) -> None:
    """Train a multi-task model; writes best.pt, last.pt and metrics.jsonl to the run folder."""
    import numpy as np

    from edgemtl.data.folder import read_tasks
    from edgemtl.model import check_input_size, get_preset
    from edgemtl.paths import fresh_dir
    from edgemtl.tasks import NAVIGATION_TASKS
    from edgemtl.train import TrainConfig, train

    size = parse_size(input_size) or get_preset(preset).input_size
    check_input_size(size, get_preset(preset).stride)  # before minutes of data loading, not after
    tasks = NAVIGATION_TASKS if data == "synthetic" else read_tasks(Path(data))
    train_set = load_data(data, size, train_size, seed, tasks)
    if val_data:
        val_set = load_data(val_data, size, DEFAULT_SYNTHETIC_VAL, seed + 1_000_003, tasks)
    elif data == "synthetic":
        val_set = load_data("synthetic", size, DEFAULT_SYNTHETIC_VAL, seed + 1_000_003)
    else:
        order = np.random.default_rng(seed).permutation(len(train_set))
        cut = max(1, len(order) // 10)
        train_set, val_set = train_set.subset(order[cut:]), train_set.subset(order[:cut])
    config = TrainConfig(
        preset=preset,
        input_size=size,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        weighting=weighting,
        skips=skips,
        seed=seed,
        device=device,
    )
    result = train(config, tasks, train_set, val_set, fresh_dir(out), progress=progress, log=click.echo)
    click.echo(f"best checkpoint: {result.best_checkpoint}")


def parse_batch(text: str) -> int | None:
    """'dynamic' → None; '8' → 8."""
    if text == "dynamic":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError(f"batch {text!r} is not understood: expected 'dynamic' or a positive number")


@main.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="The .onnx file (--format onnx) or model repository folder (--format triton); default: beside the checkpoint.",
)
@click.option("--format", "target", type=click.Choice(["onnx", "triton"]), default="onnx", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--opset", type=int, default=18, show_default=True)
@click.option("--batch", default="dynamic", show_default=True, help="'dynamic' or a fixed batch size.")
@click.option("--input-size", default=None, help="HxW or N, multiples of 32; default: the training size.")
@click.option("--raw-logits/--no-raw-logits", default=False, help="Also output raw logits per task.")
@click.option("--verify/--no-verify", default=True, help="Compare with PyTorch on labelled validation frames.")
@click.option("--verify-data", default="synthetic", show_default=True, help="'synthetic' or a dataset folder.")
@click.option("--verify-frames", type=click.IntRange(1), default=256, show_default=True)
@click.option("--calib-data", default="synthetic", show_default=True, help="int8: 'synthetic' or a folder of images.")
@click.option("--calib-size", type=click.IntRange(1), default=128, show_default=True, help="int8: calibration frames.")
@click.option(
    "--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True
)
@click.option("--max-drop", type=float, default=None, help="Points a task may lose [fp32 0.1, fp16 0.5, int8 1].")
@click.option("--allow-degraded", is_flag=True, help="Keep an export that lost more than --max-drop.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def export_command(
    checkpoint: Path,
    output: Path | None,
    target: str,
    precision: str,
    opset: int,
    batch: str,
    input_size: str | None,
    raw_logits: bool,
    verify: bool,
    verify_data: str,
    verify_frames: int,
    calib_data: str,
    calib_size: int,
    calib_method: str,
    max_drop: float | None,
    allow_degraded: bool,
    overwrite: bool,
) -> None:
    """Export a checkpoint to a self-describing .onnx file (uint8 BGR frames in, results out)."""
    from edgemtl.data import load_frames
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.deploy.triton import model_file, write_triton_config
    from edgemtl.tasks import NAVIGATION_TASKS
    from edgemtl.train import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    options = ExportOptions(
        precision=precision,
        opset=opset,
        batch=parse_batch(batch),
        input_size=parse_size(input_size),
        raw_logits=raw_logits,
        calibration_method=calib_method,
        max_drop=max_drop,
        allow_degraded=allow_degraded,
    ).validate(loaded)  # before minutes of data loading, not after
    if loaded.tasks != NAVIGATION_TASKS:  # synthetic scenes only label the navigation tasks
        if verify and verify_data == "synthetic":
            raise ConfigError(
                "this model's tasks are not the navigation ones: pass --verify-data FOLDER or --no-verify"
            )
        if precision == "int8" and calib_data == "synthetic":
            raise ConfigError("this model's tasks are not the navigation ones: pass --calib-data FOLDER for int8")
    if target == "triton":
        repository = output or checkpoint.parent / "triton"
        output = model_file(repository, checkpoint.stem)
    else:
        output = output or checkpoint.with_suffix(".onnx" if precision == "fp32" else f".{precision}.onnx")
    size = options.input_size
    whole_batches = options.batch or 1
    data = None
    if verify:
        data = load_data(verify_data, size, verify_frames, 1_000_003, loaded.tasks)
        data = data.subset(slice(0, (min(len(data), verify_frames) // whole_batches) * whole_batches))
    calibration = None
    if precision == "int8":
        if calib_data == "synthetic":  # the first training scenes: make_dataset(n, seed=0) is a prefix
            calibration = load_data("synthetic", size, calib_size, 0).images
        else:
            calibration = load_frames(Path(calib_data), size, calib_size)
        calibration = calibration[: len(calibration) // whole_batches * whole_batches]
    created = next((p for p in reversed(output.parents) if not p.exists()), None)  # Triton's model folders
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = export_onnx(
            loaded, output, options, verify_data=data, calibration_frames=calibration, overwrite=overwrite
        )
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)  # leave no empty repository behind a failed export
        raise
    click.echo(f"wrote {result.path} ({result.size_bytes / 1e6:.2f} MB, {precision}, opset {opset})")
    if target == "triton":
        click.echo(f"wrote {write_triton_config(repository, checkpoint.stem, result.metadata)}")
    if result.parity:
        click.echo(f"parity with PyTorch on {result.parity.frames} frames:")
        for check in result.parity.checks:
            click.echo(f"  {check}")
    if result.verification:
        for line in result.verification.lines():
            click.echo(line)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
def info(model: Path) -> None:
    """What an .onnx file is: tasks, classes, input, precision, metrics, version."""
    from edgemtl.runtime.engine import Engine, describe_graph

    try:
        engine = Engine(model, device="cpu")
    except ForeignModelError:
        click.echo(f"{model}: an ONNX model, not an edgemtl export (no edgemtl.* metadata)")
        for line in describe_graph(model):
            click.echo(line)
        return
    click.echo(f"{model}")
    for line in engine.metadata.describe():
        click.echo(line)
    for line in describe_graph(model):
        click.echo(line)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("source")
@out_option("runs/predict/exp")
@device_option
@click.option("--masks/--no-masks", default=True, help="Save masks as indexed PNGs (image sources).")
def predict(model: Path, source: str, out: Path, device: str, masks: bool) -> None:
    """Run a model on an image, folder, glob or video: overlays, masks and predictions.jsonl."""
    from edgemtl.paths import fresh_dir
    from edgemtl.predict import predict_source
    from edgemtl.runtime import Engine

    engine = Engine(model, device=device)
    summary = predict_source(engine, source, fresh_dir(out), save_masks=masks)
    click.echo(
        f"{summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} FPS) on {engine.providers[0]}; "
        f"results in {summary.out_dir}"
    )


def engine_options(spinning: bool) -> Callable[[Callable], Callable]:
    """The ONNX Runtime flags `camera` and `bench` share; they become an EngineOptions.

    `spinning` is the default for busy-waiting ORT threads: on for `bench` (lowest latency of the model
    alone), off for `camera`, where spinning threads take the cores the decoder and the overlay need.
    """
    options = [
        click.option("--threads", type=click.IntRange(1), default=None, help="ORT intra-op threads [one per core]."),
        click.option(
            "--spinning/--no-spinning", default=spinning, show_default=True, help="Idle ORT threads busy-wait."
        ),
        click.option("--io-binding/--no-io-binding", default=None, help="Bind buffers once [on with CUDA/TensorRT]."),
        click.option("--cuda-graph/--no-cuda-graph", default=False, help="Capture and replay a CUDA graph."),
        click.option("--trt-fp16/--no-trt-fp16", default=False, help="TensorRT: allow fp16 kernels."),
        click.option("--trt-cache", type=click.Path(path_type=Path), default=None, help="TensorRT engine cache dir."),
    ]

    def decorate(function: Callable) -> Callable:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def make_engine_options(**flags: Any) -> Any:
    from edgemtl.runtime import EngineOptions

    return EngineOptions(
        threads=flags["threads"],
        spinning=flags["spinning"],
        io_binding=flags["io_binding"],
        cuda_graph=flags["cuda_graph"],
        trt_fp16=flags["trt_fp16"],
        trt_cache_dir=flags["trt_cache"],
    )


runtime_device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]),
    default="auto",
    show_default=True,
    help="Where to run (CUDA and TensorRT are untested: no GPU was at hand).",
)


@main.command()
@click.argument("source")
@click.option("-m", "--model", type=click.Path(path_type=Path), required=True, help="The exported .onnx file.")
@click.option(
    "-o", "--output", default="display", show_default=True, help="display, none, a video (.mp4/.avi/.mkv) or a folder."
)
@runtime_device_option
@engine_options(spinning=False)
@click.option("--live/--no-live", default=None, help="Newest frame only, stale ones dropped [cameras, streams].")
@click.option("--pace/--no-pace", default=False, help="Read a video file at its own frame rate.")
@click.option("--frames", "max_frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
@click.option("--reconnects", type=click.IntRange(0), default=3, show_default=True, help="Stream reconnect attempts.")
@click.option("--stats/--no-stats", default=True, help="Draw FPS and latency on the frames.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write the summary here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output video.")
def camera(
    source: str,
    model: Path,
    output: str,
    device: str,
    live: bool | None,
    pace: bool,
    max_frames: int | None,
    reconnects: int,
    stats: bool,
    json_path: Path | None,
    overwrite: bool,
    **flags: Any,
) -> None:
    """Live: a camera, stream or file → model → overlay → window, video, folder or nothing; Ctrl-C stops.

    SOURCE: a camera index (0) or /dev/videoN, a video file, an image, folder or glob, rtsp:// or http(s)://.
    """
    import json

    from edgemtl.runtime import Engine, open_output, open_source, run_pipeline

    engine = Engine(model, device, make_engine_options(**flags))
    with (
        open_source(source, live=live, pace=pace, reconnects=reconnects) as frames,
        open_output(output, fps=frames.fps, overwrite=overwrite) as sink,
    ):
        click.echo(f"{source} -> {output} on {engine.describe()}; Ctrl-C stops", err=True)
        summary = run_pipeline(
            engine, frames, sink, max_frames=max_frames, draw_stats=stats, report=_echo_err, output_name=output
        )
    click.echo(("stopped: " if summary.interrupted else "") + summary.describe())
    if json_path:
        json_path.write_text(json.dumps(summary.to_dict(), indent=2) + "\n")


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--device", "devices", multiple=True, type=click.Choice(["cpu", "cuda", "tensorrt"]), help="[every one]")
@engine_options(spinning=True)
@click.option("--batch", "batches", multiple=True, type=click.IntRange(1), default=(1,), show_default=True)
@click.option("--runs", type=click.IntRange(10), default=200, show_default=True, help="Timed calls per row.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Adds PyTorch eager rows.")
@click.option("--video", type=click.Path(path_type=Path), default=None, help="Pipeline source [a synthetic drive].")
@click.option("--frame-size", default="480x640", show_default=True, help="Camera frame HxW for end-to-end rows.")
@click.option("--pipeline-frames", type=click.IntRange(0), default=500, show_default=True, help="0: no pipeline.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write the results here.")
def bench(
    models: tuple[Path, ...],
    devices: tuple[str, ...],
    batches: tuple[int, ...],
    runs: int,
    checkpoint: Path | None,
    video: Path | None,
    frame_size: str,
    pipeline_frames: int,
    json_path: Path | None,
    **flags: Any,
) -> None:
    """Latency and throughput of .onnx files per provider and batch, end to end, and in the pipeline."""
    import json

    from edgemtl.bench import BENCH_DEVICES, run_bench

    report = run_bench(
        list(models),
        devices=devices or BENCH_DEVICES,
        batches=batches,
        runs=runs,
        options=make_engine_options(**flags),
        checkpoint=checkpoint,
        video=video,
        frame_size=parse_size(frame_size) or (480, 640),
        pipeline_frames=pipeline_frames,
    )
    for line in report.lines():
        click.echo(line)
    if json_path:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
