"""The `edgemtl` command: click only. Flags become the typed requests of `edgemtl.commands`, reports become
lines, and errors become one line and an exit code, never a traceback.

One grammar for every command that runs a model: `edgemtl CMD [SOURCE...] -m MODEL -o OUTPUT [--device D]`.
Use cases are imported inside each command, so `edgemtl info` and `edgemtl camera` never load PyTorch.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edgemtl import __version__
from edgemtl.errors import ConfigError, EdgemtlError

#: What `pip install 'edgemtl[train]'` adds to the runtime's numpy, onnxruntime and OpenCV.
TRAINING_MODULES = frozenset({"torch", "onnx", "onnxscript", "onnxconverter_common", "tqdm", "matplotlib"})
MODEL_SUFFIXES = (".onnx", ".pt", ".pth")


class EdgemtlGroup(click.Group):
    """Turns every EdgemtlError into one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgemtlError as exc:
            raise click.ClickException(str(exc)) from None
        except ModuleNotFoundError as exc:  # a runtime-only install running a command that trains or plots
            package = (exc.name or "").split(".")[0]
            if package not in TRAINING_MODULES:
                raise
            raise click.ClickException(
                f"this command needs {package}, which comes with the training extra: pip install 'edgemtl[train]'"
            ) from None
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


def parse_batch(text: str) -> int | None:
    """'dynamic' → None; '8' → 8."""
    if text == "dynamic":
        return None
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError(f"batch {text!r} is not understood: expected 'dynamic' or a positive number")


def deprecated(old: str, new: str) -> None:
    """One line on stderr for a spelling that still works for one release."""
    click.echo(f"note: `{old}` is deprecated and goes in the next release; use `{new}`", err=True)


def is_model_file(text: str) -> bool:
    return Path(text).suffix.lower() in MODEL_SUFFIXES


def output_option(default: str, help_text: str) -> Callable:
    """-o/--output (--out is the older spelling); folders are never overwritten: a numbered one is made."""
    return click.option("-o", "--output", "--out", "output", default=default, show_default=True, help=help_text)


def model_option(help_text: str = "The exported .onnx file.", required: bool = True) -> Callable:
    return click.option("-m", "--model", type=click.Path(path_type=Path), required=required, help=help_text)


device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Where to run."
)
runtime_device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]),
    default="auto",
    show_default=True,
    help="Where to run (CUDA tested on an H100; TensorRT untested).",
)
seed_option = click.option("--seed", type=int, default=0, show_default=True)
progress_option = click.option("--progress/--no-progress", default=True, help="Show progress bars.")


def engine_options(spinning: bool) -> Callable[[Callable], Callable]:
    """The ONNX Runtime flags `camera` and `bench` share; `make_engine_options` turns them into EngineOptions.

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


def make_engine_options(flags: dict[str, Any]) -> Any:
    """EngineOptions from the flags of `engine_options`, which are popped from `flags`."""
    from edgemtl.runtime import EngineOptions

    return EngineOptions(
        threads=flags.pop("threads"),
        spinning=flags.pop("spinning"),
        io_binding=flags.pop("io_binding"),
        cuda_graph=flags.pop("cuda_graph"),
        trt_fp16=flags.pop("trt_fp16"),
        trt_cache_dir=flags.pop("trt_cache"),
    )


def echo_err(line: str) -> None:
    click.echo(line, err=True)


@click.group(cls=EdgemtlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgemtl")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def main(verbose: bool) -> None:
    """edgemtl: train a multi-task vision net, export it to ONNX, run it on camera frames."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")


@main.command()
@output_option("runs/demo", "Output folder (a new numbered one if it exists).")
@click.option("--epochs", type=click.IntRange(1), default=12, show_default=True)
@click.option("--train-size", type=click.IntRange(8), default=3000, show_default=True, help="Synthetic scenes.")
@click.option("--video-frames", type=click.IntRange(1), default=300, show_default=True)
@seed_option
@device_option
@progress_option
def demo(output: str, epochs: int, train_size: int, video_frames: int, seed: int, device: str, progress: bool) -> None:
    """The whole path on the CPU in minutes: synthetic data → train nano → export → run on a video."""
    from edgemtl.commands.demo import DemoConfig, run_demo

    config = DemoConfig(epochs=epochs, train_size=train_size, video_frames=video_frames, seed=seed, device=device)
    report = run_demo(Path(output), config, progress=progress, log=click.echo)
    click.echo("")
    click.echo((report.out_dir / "report.md").read_text())
    click.echo(f"done in {report.seconds['total']} s; everything is in {report.out_dir}")


# `edgemtl train` flag → the config file's key it sets. Their defaults are the config's own (TrainCommand).
TRAIN_FLAGS = {
    "data": "data.train",
    "val_data": "data.val",
    "train_size": "data.train_size",
    "preset": "model.preset",
    "input_size": "model.input_size",
    "skips": "model.skips",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.learning_rate",
    "weighting": "train.weighting",
    "seed": "seed",
    "device": "device",
}


class TrainCommand(click.Command):
    """Shows and uses TrainConfig's and DataConfig's defaults, read when the command runs or shows its help,
    so they are written once (edgemtl.train.config) and `edgemtl info` never loads PyTorch to parse flags."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from edgemtl.train.config import RunConfig

        defaults = RunConfig().to_dict()
        for param in self.params:
            key = TRAIN_FLAGS.get(param.name or "")
            if key is not None and param.name != "input_size":
                section, _, name = key.rpartition(".")
                param.default = (defaults[section] if section else defaults)[name]
                param.show_default = True
        return super().parse_args(ctx, args)


@main.command("train", cls=TrainCommand)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="A TOML training config (or a run's config.json); flags given on the command line override it.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue the run in this folder from its last.pt, with its saved config (--epochs may extend it).",
)
@click.option("--data", help="'synthetic', a dataset folder (images/, masks/, labels.csv, tasks.json) or a manifest.")
@click.option("--val-data", default=None, help="Validation folder; default: synthetic, or 10% of --data.")
@click.option("--preset", help="nano, small or base.")
@click.option("--input-size", default=None, help="HxW or N; default: the preset's.")
@click.option("--epochs", type=click.IntRange(1))
@click.option("--batch-size", type=click.IntRange(1), help="Per process under torchrun.")
@click.option("--lr", type=click.FloatRange(0, min_open=True))
@click.option("--train-size", type=click.IntRange(1), help="Synthetic scenes to train on.")
@click.option("--weighting", type=click.Choice(["fixed", "uncertainty", "dwa", "gradnorm"]), help="Task weighting.")
@click.option("--skips/--no-skips", help="Encoder skips into the segmentation decoder.")
@click.option("--seed", type=int)
@device_option
@click.option("-o", "--output", "--out", "output", default=None, help="Run folder [runs/train/exp, or numbered].")
@progress_option
@click.pass_context
def train_command(
    ctx: click.Context, config_file: Path | None, resume: Path | None, output: str | None, progress: bool, **flags: Any
) -> None:
    """Train a multi-task model; writes best.pt, last.pt, config.json and metrics.jsonl to the run folder.

    Settings come from the flags given on the command line, then the --config file (or, with --resume,
    the run's saved config), then the defaults shown. Under `torchrun --nproc_per_node N` the same
    command trains with DistributedDataParallel; --batch-size is per process.
    """
    from click.core import ParameterSource

    from edgemtl.commands.train import TrainOptions, run_train
    from edgemtl.train.distributed import is_main_process

    command_line = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    flags["input_size"] = parse_size(flags["input_size"])
    overrides = {
        key: flags[flag] for flag, key in TRAIN_FLAGS.items() if ctx.get_parameter_source(flag) in command_line
    }
    options = TrainOptions(
        config=config_file,
        overrides=overrides,
        resume=resume,
        out=None if output is None else Path(output),
        progress=progress,
    )
    result = run_train(options, log=click.echo)
    if is_main_process():
        click.echo(f"best checkpoint: {result.best_checkpoint}")


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
    calib_method: str,
    max_drop: float | None,
    allow_degraded: bool,
    **flags: Any,
) -> None:
    """Export a checkpoint to a self-describing .onnx file (uint8 BGR frames in, results out)."""
    from edgemtl.commands.export import ExportRequest, run_export
    from edgemtl.deploy import ExportOptions

    options = ExportOptions(
        precision=precision,
        opset=opset,
        batch=parse_batch(batch),
        input_size=parse_size(input_size),
        raw_logits=raw_logits,
        calibration_method=calib_method,
        max_drop=max_drop,
        allow_degraded=allow_degraded,
    )
    report = run_export(ExportRequest(checkpoint, options, output, target, **flags))
    for line in report.lines():
        click.echo(line)


@main.command("eval")
@click.argument("data", required=False)
@model_option("A checkpoint (.pt, run in PyTorch) or an export (.onnx, run in ONNX Runtime).", required=False)
@click.option("--data", "data_option", default=None, hidden=True)  # the older spelling: eval MODEL --data DATA
@click.option("--frames", type=click.IntRange(1), default=400, show_default=True, help="Synthetic scenes.")
@seed_option
@device_option
@output_option("runs/eval/exp", "Output folder (a new numbered one if it exists).")
def eval_command(
    data: str | None, model: Path | None, data_option: str | None, frames: int, seed: int, device: str, output: str
) -> None:
    """Per-task metrics of a model on labelled DATA: 'synthetic' (held-out scenes, the default) or a dataset
    folder or manifest. Prints a table and writes metrics.json, confusion matrices, per-class scores and a
    prediction grid.
    """
    from edgemtl.commands.evaluate import EvalRequest, run_eval

    if model is None and data is not None and is_model_file(data):
        deprecated("edgemtl eval MODEL --data DATA", "edgemtl eval DATA -m MODEL")
        model, data = Path(data), data_option
    if model is None:
        raise ConfigError("no model given: expected -m MODEL, a checkpoint (.pt) or an export (.onnx)")
    request = EvalRequest(model, data or data_option or "synthetic", frames, seed, device, Path(output))
    report = run_eval(request)
    for line in report.lines():
        click.echo(line)
    click.echo(f"metrics.json and plots in {report.out_dir}")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
def info(model: Path) -> None:
    """What an .onnx file is: tasks, classes, input, precision, metrics, version."""
    from edgemtl.commands.info import describe_model

    for line in describe_model(model):
        click.echo(line)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@model_option(required=False)
@output_option("runs/predict/exp", "Output folder (a new numbered one if it exists).")
@device_option
@click.option("--masks/--no-masks", default=True, help="Save masks as indexed PNGs (image sources).")
def predict(sources: tuple[str, ...], model: Path | None, output: str, device: str, masks: bool) -> None:
    """Run a model on SOURCE (an image, folder, glob or video): overlays, masks and predictions.jsonl."""
    from edgemtl.commands.predict import PredictRequest, run_predict

    if model is None and len(sources) == 2 and is_model_file(sources[0]):
        deprecated("edgemtl predict MODEL SOURCE --out DIR", "edgemtl predict SOURCE -m MODEL -o DIR")
        model, sources = Path(sources[0]), sources[1:]
    if model is None:
        raise ConfigError("no model given: expected -m MODEL, an .onnx file written by `edgemtl export`")
    if len(sources) != 1:
        raise ConfigError(f"predict takes one SOURCE, got {len(sources)}: {' '.join(sources)}")
    summary = run_predict(PredictRequest(sources[0], model, Path(output), device, masks))
    click.echo(summary.describe())


@main.command()
@click.argument("source")
@model_option()
@click.option(
    "-o", "--output", default="display", show_default=True, help="display, none, a video (.mp4/.avi/.mkv) or a folder."
)
@runtime_device_option
@engine_options(spinning=False)
@click.option("--live/--no-live", default=None, help="Newest frame only, stale ones dropped [cameras, streams].")
@click.option("--pace/--no-pace", default=False, help="Read a video file at its own frame rate.")
@click.option("--frames", "max_frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
@click.option("--reconnects", type=click.IntRange(0), default=3, show_default=True, help="Stream reconnect attempts.")
@click.option("--stats/--no-stats", "draw_stats", default=True, help="Draw FPS and latency on the frames.")
@click.option("--json", "summary_json", type=click.Path(path_type=Path), default=None, help="Write the summary here.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output video.")
def camera(**flags: Any) -> None:
    """Live: a camera, stream or file → model → overlay → window, video, folder or nothing; Ctrl-C stops.

    SOURCE: a camera index (0) or /dev/videoN, a video file, an image, folder or glob, rtsp:// or http(s)://.
    """
    from edgemtl.commands.camera import CameraRequest, run_camera

    options = make_engine_options(flags)
    summary = run_camera(CameraRequest(options=options, **flags), status=echo_err)
    click.echo(("stopped: " if summary.interrupted else "") + summary.describe())


@main.command()
@click.argument("sources", nargs=-1)
@click.option("-m", "--model", "models", multiple=True, type=click.Path(path_type=Path), help="An .onnx file [repeat].")
@click.option("--device", "devices", multiple=True, type=click.Choice(["cpu", "cuda", "tensorrt"]), help="[every one]")
@engine_options(spinning=True)
@click.option("--batch", "batches", multiple=True, type=click.IntRange(1), default=(1,), show_default=True)
@click.option("--runs", type=click.IntRange(10), default=200, show_default=True, help="Timed calls per row.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Adds PyTorch eager rows.")
@click.option("--video", type=click.Path(path_type=Path), default=None, hidden=True)  # older spelling of SOURCE
@click.option("--frame-size", default="480x640", show_default=True, help="Camera frame HxW for end-to-end rows.")
@click.option("--pipeline-frames", type=click.IntRange(0), default=500, show_default=True, help="0: no pipeline.")
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
    import json

    from edgemtl.commands.bench import BENCH_DEVICES, run_bench

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
        devices=flags.pop("devices") or BENCH_DEVICES,
        options=make_engine_options(flags),
        video=videos[0] if videos else None,
        frame_size=parse_size(frame_size) or (480, 640),
        **flags,
    )
    for line in report.lines():
        click.echo(line)
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
