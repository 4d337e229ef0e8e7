"""`edgemtl data import / check / show` as calls: labels from other tools into the folder format, a
dataset's problems and statistics, and a contact sheet to look at. No PyTorch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemtl.data.check import CheckReport, check_dataset, sample_views
from edgemtl.data.importers import ClassMap, ImportReport, import_dataset
from edgemtl.errors import OutputError


@dataclass(frozen=True)
class ImportRequest:
    """What `edgemtl data import` is given."""

    format: str  # a name of edgemtl.data.importers.IMPORTERS
    source: Path
    destination: Path  # a new folder: never an existing one, never inside the source
    class_map: tuple[str, ...] = ()  # SRC=DST pairs (DST '-' drops, '255' ignores), after the map file's
    map_file: Path | None = None  # a JSON class map
    labels: Path | None = None  # image-level labels (CSV or JSON) joined onto the samples
    table: Path | None = None  # the format's class table (colours, ids, labels.txt)
    take: str = "auto"  # masks or boxes: auto (as drawn), masks, boxes, both (edgemtl.data.importers.base)


def run_import(request: ImportRequest) -> ImportReport:
    """Read the source, map its classes, and write the destination whole (or nothing)."""
    class_map = ClassMap.parse(request.class_map, request.map_file)
    return import_dataset(
        request.format, request.source, request.destination, class_map, request.labels, request.table, request.take
    )


def run_check(path: Path) -> CheckReport:
    """Every problem of a dataset, with counts, and its class shares, label histograms and image sizes."""
    return check_dataset(path)


@dataclass(frozen=True)
class ShowRequest:
    """What `edgemtl data show` is given."""

    path: Path  # a dataset folder or manifest
    out: Path = field(default_factory=lambda: Path("samples.png"))
    count: int = 16
    findings: bool = False  # the samples `data check` names (problems, then rare classes) instead of a spread


@dataclass(frozen=True)
class ShowReport:
    sheet: Path
    samples: list[str]
    note: str = ""

    def lines(self) -> list[str]:
        return [f"wrote {self.sheet}: {len(self.samples)} samples", *([self.note] if self.note else [])]


def run_show(request: ShowRequest) -> ShowReport:
    """A PNG contact sheet of a few samples: frame, mask overlay, labels."""
    from edgemtl.plots.samples import plot_contact_sheet

    if request.out.suffix.lower() != ".png":
        raise OutputError(f"contact sheet {request.out} is not a .png file: expected e.g. -o samples.png")
    names, note = None, ""
    if request.findings:
        names = check_dataset(request.path).named_samples()
        note = "" if names else "the check names no samples: no problems and no rare classes"
        if not names:
            names = None
    tasks, views = sample_views(request.path, names, request.count)
    request.out.parent.mkdir(parents=True, exist_ok=True)
    images, masks, titles = [v.image for v in views], [v.masks for v in views], [v.title for v in views]
    sheet = plot_contact_sheet(request.out, tasks, images, masks, titles)
    return ShowReport(sheet, [v.name for v in views], note)
