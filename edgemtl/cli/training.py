"""The commands that make models: demo, train, export (PyTorch, imported when a command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edgemtl.cli.options import (
    device_option,
    output_option,
    outside_paths_option,
    parse_batch,
    parse_frame_size,
    parse_size,
    path_option,
    progress_option,
    seed_option,
)
from edgemtl.errors import ConfigError


@click.command()
@output_option("runs/demo", "Output folder (a new numbered one if it exists).")
@click.option(
    "--kind",
    type=click.Choice(["image", "vector"]),
    default="image",
    show_default=True,
    help="image: camera scenes and a video; vector: a table of health records, against single-task nets "
    "and a scikit-learn baseline.",
)
@click.option("--epochs", type=click.IntRange(1), default=None, help="[image 14, with --no-objects 12, vector 30]")
@click.option("--train-size", type=click.IntRange(8), default=3000, show_default=True, help="Scenes or rows.")
@click.option(
    "--video-frames", type=click.IntRange(1), default=300, show_default=True, help="Frames of the synthetic drive."
)
@click.option(
    "--objects/--no-objects",
    default=True,
    show_default=True,
    help="image: also detect each obstacle (boxes inside the graph, at 160x160); --no-objects: scene and "
    "segmentation only, at 128x128, in half the time.",
)
@seed_option
@device_option
@progress_option
def demo(
    output: str,
    kind: str,
    epochs: int | None,
    train_size: int,
    video_frames: int,
    objects: bool,
    seed: int,
    device: str,
    progress: bool,
) -> None:
    """The whole path on the CPU in minutes: synthetic data → train → export → run (a video, or a table)."""
    if kind == "vector":
        from edgemtl.commands.demo_vector import VectorDemoConfig, run_vector_demo

        vector = VectorDemoConfig(seed=seed)
        vector.rows["train"] = train_size
        vector.epochs = epochs or vector.epochs
        report = run_vector_demo(Path(output), vector, progress=progress, log=click.echo)
        click.echo("")
        click.echo((report.out_dir / "report.md").read_text())
        click.echo(f"done in {report.seconds['total']} s; everything is in {report.out_dir}")
        return
    from edgemtl.commands.demo import DemoConfig, run_demo

    config = DemoConfig(
        epochs=epochs, train_size=train_size, video_frames=video_frames, seed=seed, device=device, objects=objects
    )
    report = run_demo(Path(output), config, progress=progress, log=click.echo)
    click.echo("")
    click.echo((report.out_dir / "report.md").read_text())
    click.echo(f"done in {report.seconds['total']} s; everything is in {report.out_dir}")


# `edgemtl train` flag → the config file's key it sets. Their defaults are the config's own (TrainCommand).
TRAIN_FLAGS = {
    "data": "data.train",
    "val_data": "data.val",
    "train_size": "data.train_size",
    "val_size": "data.val_size",
    "preset": "model.preset",
    "input_size": "model.input_size",
    "skips": "model.skips",
    "encoder": "model.encoder",
    "pretrained": "model.pretrained",
    "weights": "model.weights",
    "resize": "model.resize",
    "freeze_encoder": "train.freeze_encoder",
    "encoder_lr_scale": "train.encoder_lr_scale",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.learning_rate",
    "weighting": "train.weighting",
    "plots": "train.plots",
    "seed": "seed",
    "device": "device",
    "allow_outside_paths": "data.allow_outside_paths",
}


class TrainCommand(click.Command):
    """Shows and uses TrainConfig's and DataConfig's defaults, read when the command runs or shows its help,
    so they are written once (edgemtl.train.config) and `edgemtl info` never loads PyTorch to parse flags."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        self.fill_defaults()
        return super().parse_args(ctx, args)

    def fill_defaults(self) -> None:
        """The flags' defaults from TrainConfig and DataConfig (also for docs/cli.md, edgemtl.cli.reference)."""
        from edgemtl.train.config import RunConfig

        defaults = RunConfig().to_dict()
        for param in self.params:
            key = TRAIN_FLAGS.get(param.name or "")
            if key is not None and param.name != "input_size":
                section, _, name = key.rpartition(".")
                param.default = (defaults[section] if section else defaults)[name]
                param.show_default = True


@click.command("train", cls=TrainCommand)
@path_option(
    "--config",
    "config_file",
    help_text="A TOML training config (or a run's config.json); flags given on the command line override it.",
)
@path_option(
    "--resume",
    help_text="Continue the run in this folder from its last.pt, with its saved config (--epochs may extend it).",
)
@click.option(
    "--data", help="'synthetic', a dataset folder (images/, masks/, labels.csv, tasks.json) or a manifest (.csv/.json)."
)
@click.option(
    "--val-data",
    default=None,
    help="Validation data, a dataset folder or manifest; default: synthetic scenes for synthetic --data, else the "
    "val rows of its split column, else whole groups holding 10% of --data.",
)
@click.option("--preset", help="nano, small or base.")
@click.option(
    "--input-size",
    default=None,
    help="HxW or N, multiples of 32; default: the preset's (nano 96x160, small 192x320, base 256x448).",
)
@click.option("--encoder", help="'' for the preset's own, or timm:<name> (needs timm: see docs/training.md).")
@click.option("--pretrained/--no-pretrained", help="A timm encoder's ImageNet weights, from timm's hub.")
@click.option("--weights", help="A timm encoder's weights from a local state dict file (.pth or .safetensors).")
@click.option("--freeze-encoder/--no-freeze-encoder", help="Train the decoder and heads only.")
@click.option("--encoder-lr-scale", type=click.FloatRange(0, min_open=True), help="Encoder LR / --lr.")
@click.option("--resize", type=click.Choice(["stretch", "letterbox", "crop"]), help="How camera frames fit the input.")
@click.option("--epochs", type=click.IntRange(1), help="Training epochs; with --resume, more extend the run.")
@click.option("--batch-size", type=click.IntRange(1), help="Per process under torchrun.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Learning rate.")
@click.option("--train-size", type=click.IntRange(1), help="Synthetic scenes to train on.")
@click.option("--val-size", type=click.IntRange(1), help="Synthetic scenes to validate on.")
@click.option("--plots/--no-plots", default=None, help="Curves, scores and predictions as PNGs, each epoch.")
@click.option(
    "--weighting",
    type=click.Choice(["fixed", "uncertainty", "dwa", "gradnorm", "pcgrad", "cagrad"]),
    help="Task weighting (docs/training.md says which to try).",
)
@click.option(
    "--loss",
    "losses",
    multiple=True,
    metavar="TASK=NAME",
    help="A task's loss, e.g. segmentation=ce (segmentation: ce, focal, dice_ce, ohem; classification: ce, "
    "focal; multilabel: bce, focal; regression: mse, huber). Unnamed: segmentation trains with dice_ce and "
    "inverse_sqrt class weights (made for rare classes), the others with the first. Repeatable.",
)
@click.option(
    "--class-weights",
    multiple=True,
    metavar="TASK=WEIGHTS",
    help="A task's class weights: median_frequency or inverse_sqrt (from the training targets), or one number per "
    "class, e.g. segmentation=1,1,5,2. Repeatable.",
)
@click.option("--skips/--no-skips", help="Encoder skips into the segmentation decoder.")
@click.option("--seed", type=int, help="Seed of the data, the model and the holdout.")
@device_option
@outside_paths_option
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
    overrides |= task_options("loss", flags["losses"]) | task_options("class_weights", flags["class_weights"])
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


def task_options(option: str, values: tuple[str, ...]) -> dict[str, str]:
    """`--loss segmentation=dice_ce` → {"tasks.segmentation.loss": "dice_ce"}: override keys of the config."""
    overrides = {}
    for value in values:
        task, equals, setting = value.partition("=")
        if not (equals and task.strip() and setting.strip()):
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"{flag} {value!r} is not understood: expected TASK=VALUE, e.g. segmentation=...")
        overrides[f"tasks.{task.strip()}.{option}"] = setting.strip()
    return overrides


@click.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@path_option(
    "-o",
    "--output",
    help_text="The .onnx file (--format onnx) or model repository folder (--format triton); default: beside the "
    "checkpoint.",
)
@click.option("--format", "target", type=click.Choice(["onnx", "triton"]), default="onnx", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset.")
@click.option("--batch", default="dynamic", show_default=True, help="'dynamic' or a fixed batch size.")
@click.option("--input-size", default=None, help="HxW or N, multiples of 32; default: the training size.")
@click.option("--raw-logits/--no-raw-logits", default=False, help="Also output raw logits per task.")
@click.option(
    "--resize",
    type=click.Choice(["stretch", "letterbox", "crop"]),
    default=None,
    help="Resize policy; default: training's.",
)
@click.option(
    "--frame-size",
    default=None,
    help="HxW of the camera's frames (e.g. 480x640) or 'dynamic': the graph takes raw frames, resizes them "
    "inside and returns masks at the frame's size.",
)
@click.option("--overlay-output", is_flag=True, help="With --frame-size: also output the frame with the mask blended.")
@click.option(
    "--overlay-alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="The mask's opacity."
)
@click.option("--max-detections", type=int, default=None, help="Detection: boxes per frame, K [the task's, 100].")
@click.option("--score-threshold", type=float, default=None, help="Detection: lowest score kept [the task's, 0.25].")
@click.option("--iou-threshold", type=float, default=None, help="Detection: suppression overlap [the task's, 0.5].")
@click.option("--verify/--no-verify", default=True, help="Compare with PyTorch on labelled validation frames.")
@click.option(
    "--verify-data",
    default=None,
    help="'synthetic', a dataset folder or a manifest (its val split, if it has one); default: the frames that "
    "validated the checkpoint.",
)
@click.option(
    "--verify-frames", type=click.IntRange(1), default=256, show_default=True, help="Frames compared with PyTorch."
)
@click.option(
    "--calib-data",
    default=None,
    help="int8: 'synthetic' or a folder of images at the export's size; default: the run's own training frames.",
)
@click.option("--calib-size", type=click.IntRange(1), default=128, show_default=True, help="int8: calibration frames.")
@click.option(
    "--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax", show_default=True
)
@click.option(
    "--int8-for",
    type=click.Choice(["onnxruntime", "openvino"]),
    default="onnxruntime",
    show_default=True,
    help="int8: the CPU runtime to quantize for (openvino: transposed convolutions in int8 too).",
)
@click.option("--max-drop", type=float, default=None, help="Points a task may lose [fp32 0.1, fp16 0.5, int8 1].")
@click.option("--allow-degraded", is_flag=True, help="Keep an export that lost more than --max-drop.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@outside_paths_option
def export_command(
    checkpoint: Path,
    output: Path | None,
    target: str,
    precision: str,
    opset: int,
    batch: str,
    input_size: str | None,
    raw_logits: bool,
    resize: str | None,
    frame_size: str | None,
    overlay_output: bool,
    overlay_alpha: float,
    max_detections: int | None,
    score_threshold: float | None,
    iou_threshold: float | None,
    calib_method: str,
    int8_for: str,
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
        resize=resize,
        frame_size=parse_frame_size(frame_size),
        overlay=overlay_output,
        overlay_alpha=overlay_alpha,
        max_detections=max_detections,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        calibration_method=calib_method,
        int8_for=int8_for,
        max_drop=max_drop,
        allow_degraded=allow_degraded,
    )
    report = run_export(ExportRequest(checkpoint, options, output, target, **flags))
    for line in report.lines():
        click.echo(line)
