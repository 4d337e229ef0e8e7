"""Finding files in an import's source: the images of a folder, an image by stem, paths a file names.

Label files come from other people, so a path one of them names is resolved inside the source folder
and refused if it points outside it (`../../etc/passwd` is not an image of the dataset).
"""

from __future__ import annotations

import csv
from pathlib import Path
from xml.etree import ElementTree

from edgemtl.data.manifest import IMAGE_SUFFIXES
from edgemtl.errors import DataError


def image_files(folder: Path) -> list[Path]:
    """The images of a folder, sorted by name; a missing or empty folder is an error naming it."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist: expected the source's frames there")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"image folder {folder} holds no images: expected {', '.join(IMAGE_SUFFIXES)} files")
    return files


def find_image(folders: list[Path], stem: str) -> Path | None:
    """The image <stem>.<png|jpg|...> in the first of `folders` that has one."""
    for folder in folders:
        for suffix in (*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def inside(root: Path, relative: str, where: str) -> Path:
    """root/relative, refused when a label file's path leads outside root."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(f"{where} names {relative!r}, outside {root}: expected a path inside the source folder")
    return path


def stem_of(relative: str) -> str:
    """A unique flat name for a file given by a relative path: subfolders joined by '_'."""
    return "_".join(Path(relative).with_suffix("").parts)


def read_table(path: Path, what: str, header: str) -> list[dict[str, str]]:
    """The rows of a class table (a CSV with `header`), or a DataError naming the file and the header."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist: expected a CSV with header {header}")
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return list(csv.DictReader(file))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {what} {path} ({exc}): expected a CSV with header {header}") from None


MAX_XML_BYTES = 512 * 1024 * 1024  # a CVAT annotations.xml of a large task; VOC's are a few kB each


def read_xml(path: Path, what: str) -> ElementTree.Element:
    """The root of an XML file from a labelling tool, bounded in size; a DataError naming it when unreadable.

    (ElementTree resolves no external entities, and the expat it uses refuses entity-expansion bombs.)"""
    try:
        if path.stat().st_size > MAX_XML_BYTES:
            raise DataError(f"{what} {path} is over {MAX_XML_BYTES >> 20} MiB: split the export")
        return ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as exc:
        raise DataError(f"{what} {path} is not readable XML ({exc})") from None


def xml_number(element: ElementTree.Element | None, tag: str, where: str) -> float:
    """The number in <tag> under `element` (VOC's <xmin>…), or a DataError naming where it is missing."""
    child = element.find(tag) if element is not None else None
    try:
        return float(child.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise DataError(f"{where} has no number in <{tag}>: expected e.g. <{tag}>12</{tag}>") from None
