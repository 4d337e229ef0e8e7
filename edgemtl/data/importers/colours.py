"""Plain RGB colour masks with a colour → class table, and the colour lookup VOC / CVAT masks share.

    SRC/
      images/<stem>.png|.jpg     the frames
      masks/<stem>.png           RGB: one colour per class (any PNG mode; palette PNGs are read as colours)
      colors.csv                 the table, header `class,r,g,b`, one row per class, the first row is class 0:
                                   class,r,g,b
                                   background,0,0,0
                                   road,128,64,128
                                 a class named `255` (or `ignore`) marks a colour as unlabelled

A colour the table does not list is an error naming the mask, the colour and where it is: a stray
anti-aliased edge must not silently become some class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgemtl.data.importers.base import Source, SourceSample
from edgemtl.data.importers.classmap import background_first
from edgemtl.data.importers.files import image_files, read_table
from edgemtl.errors import DataError

IGNORE_NAMES = ("255", "ignore")  # a table row of this name marks its colour as unlabelled


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any PNG, palette masks included (as the colours they show)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"mask {path} does not exist: expected one mask per image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"mask {path} cannot be read ({exc}): expected a PNG colour mask") from None


def colour_ids(rgb: np.ndarray, table: dict[tuple[int, int, int], int], path: Path, table_name: str) -> np.ndarray:
    """(H, W) class ids (-1 where unlabelled) of a colour mask; an unlisted colour is an error saying where."""
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    unique, inverse = np.unique(codes.ravel(), return_inverse=True)
    lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in table.items()}
    ids = np.array([lookup.get(int(code), -2) for code in unique], dtype=np.int64)
    if (ids == -2).any():
        code = int(unique[np.flatnonzero(ids == -2)[0]])
        colour = (code >> 16, (code >> 8) & 255, code & 255)
        y, x = (int(v[0]) for v in np.nonzero(codes == code))
        count = int((codes == code).sum())
        raise DataError(
            f"mask {path} has colour {colour} ({count} pixels, first at x={x}, y={y}) that {table_name} does not "
            f"list: add a row for it (e.g. {','.join(map(str, colour))} as a class or 255 to ignore), or repaint it"
        )
    return ids[inverse].reshape(codes.shape)


def read_colour_table(path: Path) -> tuple[tuple[str, ...], dict[tuple[int, int, int], int]]:
    """colors.csv → (class names in order, background first, colour → class id; -1 for the ignore rows)."""
    rows = read_table(path, "colour table", "class,r,g,b")
    classes: list[str] = []
    table: dict[tuple[int, int, int], int] = {}
    for line, row in enumerate(rows, start=2):
        try:
            name = (row.get("class") or "").strip()
            colour = tuple(int(row[c]) for c in "rgb")
        except (KeyError, TypeError, ValueError):
            name, colour = "", ()
        if not name or len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise DataError(f"{path} line {line} is not a class and a colour: expected class,r,g,b with 0..255 values")
        if name not in IGNORE_NAMES and name not in classes:
            classes.append(name)
        table[colour] = -1 if name in IGNORE_NAMES else classes.index(name)
    if not classes:
        raise DataError(f"colour table {path} lists no class: expected rows class,r,g,b")
    named, index = background_first(classes, add=False)  # `background` / `_background_`, any case: one, first
    return named, {colour: index[i] if i >= 0 else -1 for colour, i in table.items()}


def _samples(src: Path, table: dict[tuple[int, int, int], int], table_name: str) -> Iterator[SourceSample]:
    masks = src / "masks"
    for image in image_files(src / "images"):
        mask = masks / f"{image.stem}.png"
        if not mask.is_file():
            raise DataError(f"image {image} has no mask {mask}: expected masks/<stem>.png for every image")
        yield SourceSample(image.stem, image, colour_ids(read_rgb(mask), table, mask, table_name))


def import_colours(src: Path, table: Path | None = None) -> Source:
    """A folder of images and RGB colour masks, with its colour → class table (default SRC/colors.csv)."""
    table_path = table or src / "colors.csv"
    classes, colours = read_colour_table(table_path)
    return Source(classes, {}, _samples(src, colours, str(table_path)))
