"""`edgemtl data`: import labels from other tools, check a dataset, show a contact sheet (no PyTorch)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgemtl.cli.options import path_option

#: The formats `data import` takes, listed in its help; edgemtl.data.importers.IMPORTERS is checked against it.
TAKES = ("auto", "masks", "boxes", "both")  # edgemtl.data.importers.TAKES, checked by a test
FORMATS = ("voc", "cvat", "coco", "labelme", "yolo", "cityscapes", "colours", "images")


@click.group("data")
def data_group() -> None:
    """Datasets: import labels from labelling tools, check them, look at them."""


@data_group.command("import")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("destination", type=click.Path(path_type=Path))
@click.option(
    "--map",
    "class_map",
    multiple=True,
    help="SRC=DST: rename or merge a class; DST '-' drops it, '255' ignores it [repeat].",
)
@path_option("--map-file", help_text='A JSON class map: {"car": "vehicle", "tree": null, "blur": 255}.')
@path_option("--labels", help_text="Image-level labels (CSV or JSON, an image column) joined onto the samples.")
@path_option(
    "--table", help_text="The format's class table: colours (class,r,g,b), cityscapes (id,class), labelme (labels.txt)."
)
@click.option(
    "--take",
    type=click.Choice(TAKES),
    default="auto",
    show_default=True,
    help="Masks or boxes: auto (each object as drawn: polygons → mask, boxes → boxes), masks, boxes or both.",
)
def import_command(
    format_name: str,
    source: Path,
    destination: Path,
    class_map: tuple[str, ...],
    map_file: Path | None,
    labels: Path | None,
    table: Path | None,
    take: str,
) -> None:
    """Write the folder format to DESTINATION (a new folder) from SOURCE in FORMAT: voc (Pascal VOC masks and
    boxes), cvat (CVAT for images 1.1 XML, or 'Segmentation mask 1.1'), coco (instance or stuff JSON, masks
    and boxes), labelme, yolo (boxes), cityscapes (label-id PNGs), colours (RGB colour masks) or images
    (labels from --labels only). SOURCE is never changed; DESTINATION is written whole or not at all."""
    from edgemtl.commands.data import ImportRequest, run_import

    request = ImportRequest(format_name, source, destination, class_map, map_file, labels, table, take)
    report = run_import(request)
    for line in report.lines():
        click.echo(line)


@data_group.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def check_command(path: Path) -> None:
    """Every problem of the dataset at PATH (a folder or manifest) with counts, class pixel shares, label
    histograms and image sizes; warns where a class is under 1 %. Exit code 1 when there are problems."""
    from edgemtl.commands.data import run_check

    report = run_check(path)
    for line in report.lines():
        click.echo(line)
    if not report.clean:
        sys.exit(1)


@data_group.command("show")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("samples.png"),
    show_default=True,
    help="The contact sheet (.png).",
)
@click.option("-n", "--count", type=click.IntRange(1, 64), default=16, show_default=True, help="Samples on the sheet.")
@click.option(
    "--findings", is_flag=True, help="The samples `data check` names (problems, rare classes) instead of a spread."
)
def show_command(path: Path, output: Path, count: int, findings: bool) -> None:
    """A PNG contact sheet of the dataset at PATH: frames, mask overlays and labels."""
    from edgemtl.commands.data import ShowRequest, run_show

    for line in run_show(ShowRequest(path, output, count, findings)).lines():
        click.echo(line)
