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
#: What `pip install 'edgemtl[train]'` adds to the runtime's numpy, onnxruntime and OpenCV.
TRAINING_MODULES = frozenset({"torch", "onnx", "onnxscript", "onnxconverter_common", "tqdm", "matplotlib"})


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


def load_data(
    spec: str, size: tuple[int, int], count: int, seed: int, tasks: tuple[TaskSpec, ...] | None = None
) -> ArrayDataset:
    """`synthetic` → generated scenes (targets for `tasks`, navigation by default); else a folder or manifest."""
    if spec == "synthetic":
        from edgemtl.data.synthetic import make_dataset
        from edgemtl.tasks import NAVIGATION_TASKS

        return make_dataset(count, size, seed=seed, tasks=tasks or NAVIGATION_TASKS)
    from edgemtl.data import load_dataset

    return load_dataset(Path(spec), tasks, size)


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
@click.option(
    "--data",
    default="synthetic",
    show_default=True,
    help="'synthetic', a dataset folder (images/, masks/, labels.csv, tasks.json) or a manifest .csv/.json.",
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
@click.option(
    "--weighting",
    type=click.Choice(["fixed", "uncertainty", "dwa", "gradnorm"]),
    default="fixed",
    show_default=True,
    help="Task weighting.",
)
@click.option("--skips/--no-skips", default=True, help="Encoder skips into the segmentation decoder.")
@seed_option
@device_option
@out_option("runs/train/exp")
@progress_option
@click.pass_context
def train_command(
    ctx: click.Context,
    config_file: Path | None,
    resume: Path | None,
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
    """Train a multi-task model; writes best.pt, last.pt, config.json and metrics.jsonl to the run folder.

    Settings come from the flags given on the command line, then the --config file (or, with --resume,
    the run's saved config), then the defaults shown. Under `torchrun --nproc_per_node N` the same
    command trains with DistributedDataParallel; --batch-size is per process.
    """
    from dataclasses import replace

    import numpy as np
    from click.core import ParameterSource

    from edgemtl.data.folder import read_tasks
    from edgemtl.model import check_input_size, get_preset
    from edgemtl.paths import fresh_dir
    from edgemtl.tasks import NAVIGATION_TASKS
    from edgemtl.train import train
    from edgemtl.train.checkpoint import load_resumable
    from edgemtl.train.config import RunConfig, load_config, with_overrides
    from edgemtl.train.distributed import is_main_process

    command_line = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    given = {name for name in ctx.params if ctx.get_parameter_source(name) in command_line}
    if resume is not None and "out" in given:
        raise ConfigError("--out cannot be combined with --resume: a resumed run continues in its own folder")
    if config_file is not None:
        run = load_config(config_file)
    elif resume is not None:
        run = RunConfig.from_dict(load_resumable(resume / "last.pt").config, str(resume / "last.pt"))
    else:
        run = RunConfig()
    flags = {**ctx.params, "input_size": parse_size(input_size)}
    train_fields = {"lr": "learning_rate", "preset": "preset", "input_size": "input_size", "epochs": "epochs"}
    train_fields |= {name: name for name in ("batch_size", "weighting", "skips", "seed", "device")}
    data_fields = {"data": "train", "val_data": "val", "train_size": "train_size"}
    run = with_overrides(
        run,
        {field: flags[flag] for flag, field in train_fields.items() if flag in given},
        {field: flags[flag] for flag, field in data_fields.items() if flag in given},
    )

    run = replace(run, data=run.data.absolute())
    config, source = run.train, run.data
    size = config.resolved_input_size()
    check_input_size(size, get_preset(config.preset).stride)  # before minutes of data loading, not after
    seed = config.seed
    tasks = run.tasks or (NAVIGATION_TASKS if source.train == "synthetic" else read_tasks(Path(source.train)))
    run = replace(run, tasks=tasks)  # checks the augmentation against the tasks before any data is loaded
    train_set = load_data(source.train, size, source.train_size, seed, tasks)
    if source.val or source.train == "synthetic":
        val_set = load_data(source.val or "synthetic", size, source.val_size, seed + 1_000_003, tasks)
    else:
        order = np.random.default_rng(seed).permutation(len(train_set))
        cut = max(1, len(order) // 10)
        train_set, val_set = train_set.subset(order[cut:]), train_set.subset(order[:cut])
    config = replace(config, input_size=size)  # recorded resolved, so a resume compares like with like
    # A resumed run continues in its folder; under torchrun only rank 0 makes (and writes) a new one.
    run_dir = resume if resume is not None else fresh_dir(out) if is_main_process() else out
    result = train(
        config,
        tasks,
        train_set,
        val_set,
        run_dir,
        progress=progress,
        log=click.echo,
        resume=resume is not None,
        settings=run,
    )
    if is_main_process():
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
    from edgemtl.data.synthetic import labels_all
    from edgemtl.deploy import ExportOptions, export_onnx
    from edgemtl.deploy.triton import model_file, write_triton_config
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
    if not labels_all(loaded.tasks):  # a model of other tasks was trained on other frames: use those
        if verify and verify_data == "synthetic":
            raise ConfigError(
                "this model's tasks are not ones synthetic scenes label: pass --verify-data FOLDER or --no-verify"
            )
        if precision == "int8" and calib_data == "synthetic":
            raise ConfigError(
                "this model's tasks are not ones synthetic scenes label: pass --calib-data FOLDER for int8"
            )
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
        data = data.subset(slice(0, verify_frames))  # a fixed batch is padded when scored
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


@main.command("eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", default="synthetic", show_default=True, help="'synthetic' (held-out scenes) or a folder.")
@click.option(
    "--frames", type=click.IntRange(1), default=DEFAULT_SYNTHETIC_VAL, show_default=True, help="Synthetic scenes."
)
@seed_option
@device_option
@out_option("runs/eval/exp")
def eval_command(model: Path, data: str, frames: int, seed: int, device: str, out: Path) -> None:
    """Per-task metrics of a checkpoint (.pt, PyTorch) or an export (.onnx, ONNX Runtime) on a labelled dataset.

    Prints a table and writes metrics.json, confusion matrices, per-class scores and a prediction grid.
    """
    from edgemtl.evaluation import open_evaluator, run_eval

    evaluator = open_evaluator(model, device)
    # Synthetic scenes under the demo's test seed: neither the training (seed) nor the validation
    # (seed + 1_000_003) scenes of a run with the same seed.
    dataset = load_data(data, evaluator.input_size, frames, seed + 2_000_003, evaluator.tasks)
    report = run_eval(evaluator, dataset, data, out)
    for line in report.lines():
        click.echo(line)
    click.echo(f"metrics.json and plots in {report.out_dir}")


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
    help="Where to run (CUDA tested on an H100; TensorRT untested).",
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
