"""The `edgemtl` command: click only. Flags become the typed requests of `edgemtl.commands`, reports become
lines, and errors become one line and an exit code, never a traceback (`options.EdgemtlGroup`).

One grammar for every command that runs a model: `edgemtl CMD [SOURCE...] -m MODEL -o OUTPUT [--device D]`.
Use cases are imported inside each command, so `edgemtl info` and `edgemtl camera` never load PyTorch.
"""

from __future__ import annotations

import logging
import warnings

import click

from edgemtl import __version__
from edgemtl.cli import data, running, training
from edgemtl.cli.options import EdgemtlGroup


@click.group(cls=EdgemtlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgemtl")
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
def main(verbose: bool) -> None:
    """edgemtl: train a multi-task vision net, export it to ONNX, run it on camera frames."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(message)s")
    logging.getLogger("edgemtl").setLevel(level)  # also when an earlier call in this process configured logging
    if not verbose:  # the libraries' own lines (OpenCV, FFmpeg, Python warnings) only repeat edgemtl's, less clearly
        from edgemtl.runtime.logs import quiet_libraries

        quiet_libraries()
        warnings.simplefilter("ignore")


for command in (
    training.demo,
    training.train_command,
    training.export_command,
    running.eval_command,
    running.info,
    running.predict,
    running.camera,
    running.bench,
    data.data_group,
):
    main.add_command(command)

__all__ = ["main"]
