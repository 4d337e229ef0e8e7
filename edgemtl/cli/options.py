"""What every edgemtl command shares: the error boundary, the flag parsers and the common options."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from edgemtl.errors import ConfigError, EdgemtlError, Terminated

#: What `pip install 'edgemtl[train]'` adds to the runtime's numpy, onnxruntime and OpenCV.
TRAINING_MODULES = frozenset(
    {"torch", "onnx", "onnxscript", "onnxconverter_common", "tqdm", "matplotlib", "pycocotools"}
)
MODEL_SUFFIXES = (".onnx", ".pt", ".pth")


INTERRUPTED_EXIT = 128 + signal.SIGINT  # 130, what a shell reports for a process Ctrl-C stopped
TERMINATED_EXIT = 128 + signal.SIGTERM  # 143, what docker, systemd and Kubernetes expect after SIGTERM
BROKEN_PIPE_EXIT = 128 + signal.SIGPIPE  # 141, as for any program whose reader closed the pipe


class EdgemtlGroup(click.Group):
    """The error boundary: every EdgemtlError becomes one line on stderr and exit code 1, never a traceback.

    SIGTERM is turned into Ctrl-C here, for every command (`_sigterm_like_ctrl_c`): outputs are finalized by
    the same `with` blocks, and the exit code is 143 (Ctrl-C: 130).
    """

    def invoke(self, ctx: click.Context) -> Any:
        with _sigterm_like_ctrl_c() as terminated:
            try:
                result = super().invoke(ctx)
            except EdgemtlError as exc:
                raise click.ClickException(str(exc)) from None
            except ModuleNotFoundError as exc:  # a runtime-only install running a command that trains or plots
                package = (exc.name or "").split(".")[0]
                if package not in TRAINING_MODULES:
                    raise
                raise click.ClickException(
                    f"this command needs {package}, which comes with the training extra: pip install 'edgemtl[train]'"
                ) from None
            except BrokenPipeError:  # `edgemtl info model.onnx | head`: the reader left, nothing is wrong
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open: Python flushes stdout at exit
                sys.exit(BROKEN_PIPE_EXIT)
            except OSError as exc:  # a full disk or a read-only folder met while writing
                where = f"{exc.filename}: " if exc.filename else ""
                raise click.ClickException(f"{where}{exc.strerror or exc}") from None
            except KeyboardInterrupt:
                _stopped(bool(terminated))
            if terminated:  # the command stopped on it as on Ctrl-C (a camera does) and finalized its outputs
                _stopped(True)
            return result


def _stopped(by_sigterm: bool) -> None:
    """One line, and the exit code a supervisor expects."""
    how = "terminated (SIGTERM)" if by_sigterm else "interrupted"
    click.echo(f"{how}; files written so far are complete", err=True)
    sys.exit(TERMINATED_EXIT if by_sigterm else INTERRUPTED_EXIT)


@contextlib.contextmanager
def _sigterm_like_ctrl_c() -> Iterator[list[bool]]:
    """While a command runs, SIGTERM raises `Terminated` (a KeyboardInterrupt) where Ctrl-C would raise.

    The yielded list turns true once SIGTERM came. A second SIGTERM while outputs are being finalized is
    ignored, so it cannot cut a video's index in half; a supervisor's SIGKILL still ends the process.
    Outside the main thread (click run from an application's worker) signals are left alone. A process a
    library forked (OpenVINO's telemetry sender, which its parent terminates at exit) inherits the handler:
    there SIGTERM ends the process as it would have without edgemtl, with no traceback on stderr.
    """
    received: list[bool] = []
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked child's SIGTERM is not the command's to finalize
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if not received:
            received.append(True)
            raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def verbose() -> bool:
    """Whether `edgemtl -v` was given: progress lines and the libraries' own logging are shown then."""
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("verbose"))


def status_echo() -> Callable[[str], None] | None:
    """Where a long command's status lines go: stderr on a terminal or with -v; elsewhere (a service's log,
    a pipe) nowhere, so stderr holds nothing but an error when one comes."""
    return echo_err if verbose() or sys.stderr.isatty() else None


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


def parse_frame_size(text: str | None) -> tuple[int, int] | str | None:
    """'480x640' → (480, 640); 'dynamic' stays; None: no frame size (frames at the model's size)."""
    if text is None or text == "dynamic":
        return text
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"frame size {text!r} is not understood: expected HxW (e.g. 480x640) or 'dynamic'")
    return int(parts[0]), int(parts[1])


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


def path_option(*names: str, help_text: str) -> Callable:
    """An optional path flag (None when not given)."""
    return click.option(*names, type=click.Path(path_type=Path), default=None, help=help_text)


def model_option(help_text: str = "The exported .onnx file.", required: bool = True) -> Callable:
    return click.option("-m", "--model", type=click.Path(path_type=Path), required=required, help=help_text)


device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Where to run."
)
runtime_device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where to run an .onnx file: auto, cpu, cuda, tensorrt or openvino[:CPU|GPU|NPU][:f32|bf16|f16] "
    "(CUDA tested on an H100; TensorRT untested; OpenVINO checked against cpu per file). "
    "auto: CUDA, else OpenVINO when installed, verified and faster, else cpu.",
)
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
progress_option = click.option("--progress/--no-progress", default=True, help="Show progress bars.")
outside_paths_option = click.option(
    "--allow-outside-paths",
    "allow_outside_paths",
    is_flag=True,
    default=False,
    help="Let a dataset's labels.csv or manifest name files outside its folder (refused by default).",
)


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
