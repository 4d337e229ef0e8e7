"""Tables of feature vectors: a CSV or Parquet file whose columns are named features and per-task targets.

    age,bmi,heart_rate,pressure,risk,split
    54,27.1,71,132.5,high,train
    61,,80,,low,val          <- an empty target: unlabelled for that task; an empty feature: see below

The feature columns are the ones the configuration names (`[data] features`), in that order; every other
column is ignored except the targets, one column per task named like the task (cells as in a manifest:
a class name, label names joined by `;`, a number or numbers joined by `;`), and the optional `split` and
`group` columns. An empty target cell is the task's missing marker (partial labels). An empty feature cell
is an error, unless the table is read with `missing="mean"`: then it is NaN until the training split's mean
fills it. Every problem is one DataError naming the file, the line and the column. NumPy only: no PyTorch.

A Parquet file (pyarrow, imported only for one) is read into the same rows as a CSV, its cells as text, so
both formats go through one parser and one set of errors; its rows are named "row N" (1-based), a CSV's
"line N" (the header is line 1). A null is an empty cell; a list cell (multilabel names, several regression
values) is joined with ";".
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemtl.data.manifest import parse_labels, read_splits, text_cells
from edgemtl.data.rows import GROUP_COLUMN, SPLIT_COLUMN, Row, read_csv_rows
from edgemtl.data.vectors import VectorDataset
from edgemtl.errors import DataError, OutputError
from edgemtl.features import VECTOR, check_feature_names, check_missing_policy, refuse_pixel_tasks
from edgemtl.kinds import kind_of
from edgemtl.tasks import TaskSpec

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MAX_TABLE_ROWS = 10_000_000  # a bound on what a file from someone else can make us read
#: Cells that mean "no value" besides an empty one: what spreadsheets and pandas write for a gap.
EMPTY_CELLS = frozenset({"", "na", "nan", "n/a", "null", "none"})


@dataclass(frozen=True)
class TableColumns:
    """Which columns of a table are the model's input, in order, and what an empty feature cell does."""

    features: tuple[str, ...]
    missing: str = "error"  # "error" | "mean" (edgemtl.features.MISSING_FEATURES)

    def __post_init__(self) -> None:
        check_feature_names(self.features, "[data] features")
        check_missing_policy(self.missing)


def read_table_rows(path: Path) -> list[Row]:
    """The table's non-empty rows ("line N", {column: cell}); a file that is not a CSV table is a DataError."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(f"table {path} {what}: expected a CSV file with a header row")
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(f"table {path} is not a {'/'.join(TABLE_SUFFIXES)} file: save the table as CSV or Parquet")
    rows = read_csv_rows(path, []) if path.suffix.lower() == ".csv" else _read_parquet_rows(path)
    if not rows:
        raise DataError(f"table {path} has no rows: expected a header row and at least one row of values")
    return rows


def _read_parquet_rows(path: Path) -> list[Row]:
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ModuleNotFoundError:
        raise DataError(f"table {path} is Parquet, which needs pyarrow: pip install 'edgemtl[parquet]'") from None
    try:
        metadata = parquet.read_metadata(path)
        if metadata.num_rows > MAX_TABLE_ROWS:
            raise DataError(f"table {path} has {metadata.num_rows} rows: at most {MAX_TABLE_ROWS} are read")
        records = parquet.read_table(path).to_pylist()
    except (OSError, ValueError, pyarrow.ArrowException) as exc:  # a damaged file, a codec or type it lacks
        raise DataError(f"cannot read table {path} ({exc}): expected a Parquet file") from None
    return [(f"row {i + 1}", {name: _cell_text(v) for name, v in record.items()}) for i, record in enumerate(records)]


def _cell_text(value: object) -> str:
    """A Parquet value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ";".join(_cell_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # every digit, as the float32 parse downstream expects
    return str(value)


def check_columns(path: Path, rows: list[Row], wanted: Sequence[str], what: str, fix: str) -> None:
    """Every wanted column in the header, or one line naming the first absent one and the closest there."""
    header = list(rows[0][1])
    for name in wanted:
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{path} has no {what} column {name!r}{hint}: {fix}")


def parse_features(path: Path, rows: list[Row], names: Sequence[str], missing: str) -> np.ndarray:
    """(N, F) float32 in the order of `names`; an empty cell is NaN under missing="mean", else an error."""
    values = np.empty((len(rows), len(names)), dtype=np.float32)
    for column, name in enumerate(names):
        cells = [str(row.get(name) or "").strip() for _, row in rows]
        empty = np.array([cell.lower() in EMPTY_CELLS for cell in cells])
        if empty.any() and missing != "mean":
            where = rows[int(np.argmax(empty))][0]
            raise DataError(
                f"{path} {where}, feature column {name!r} is empty ({int(empty.sum())} such cells): fill it in, "
                'or set missing_features = "mean" in [data] to use the training split\'s mean'
            )
        try:
            parsed = np.array(["nan" if e else c for c, e in zip(cells, empty)], dtype=np.float64)
        except ValueError:
            parsed = None
        finite = parsed is not None and bool(np.isfinite(parsed[~empty]).all())
        if not finite:
            for (where, _), cell, is_empty in zip(rows, cells, empty):
                if not is_empty and not _is_finite_number(cell):
                    raise DataError(
                        f"{path} {where}, feature column {name!r} holds {cell[:40]!r}: expected a finite number "
                        "(or an empty cell for a missing value)"
                    )
        values[:, column] = parsed
    return values


def _is_finite_number(cell: str) -> bool:
    try:
        return bool(np.isfinite(float(cell)))
    except ValueError:
        return False


def read_table(
    path: Path | str,
    columns: TableColumns,
    tasks: tuple[TaskSpec, ...],
    rows: Sequence[int] | None = None,
) -> VectorDataset:
    """The table as a VectorDataset: features, each task's targets, the split and group columns.

    `rows`: only the rows on these lines, in that order (the rows a checkpoint recorded as validating it).
    """
    path = Path(path)
    refuse_pixel_tasks(tasks)
    table = read_table_rows(path)
    check_columns(
        path, table, columns.features, "feature", "add the column, or remove the feature from [data] features"
    )
    check_columns(
        path, table, [t.name for t in tasks], "target", "add a column named like the task (empty cells: unlabelled)"
    )
    if rows is not None:
        by_line = {int(where.split()[-1]): (where, row) for where, row in table}
        lost = [line for line in rows if line not in by_line]
        if lost:
            raise DataError(
                f"{path} has no row on line {lost[0]} that the checkpoint recorded: expected the table it was "
                "validated on; pass the table to score explicitly"
            )
        table = [by_line[line] for line in rows]
    features = parse_features(path, table, columns.features, columns.missing)
    targets = {task.name: parse_labels(path, table, task, "column") for task in tasks}
    info = {
        "row": np.array([int(where.split()[-1]) for where, _ in table]),
        "split": np.array(read_splits(path, table), dtype=str),
        "group": np.array(text_cells(table, GROUP_COLUMN), dtype=str),
    }
    origin = {"data": str(path.resolve()), "input": VECTOR}
    return VectorDataset(features, targets, columns.features, info, origin, columns.missing)


def write_table(path: Path | str, data: VectorDataset, tasks: tuple[TaskSpec, ...]) -> Path:
    """The rows as a CSV table `read_table` reads back: features, one column per task, split (if any).

    Values keep float32 precision (9 significant digits); a missing feature or target is an empty cell.
    """
    path = Path(path)
    split = "split" in data.info and bool(np.any(data.info["split"] != ""))
    header = [*data.feature_names, *(t.name for t in tasks), *([SPLIT_COLUMN] if split else [])]
    try:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            for i, row in enumerate(data.features):
                cells = ["" if np.isnan(v) else f"{v:.9g}" for v in row]
                cells += [kind_of(t).format_label(t, data.targets[t.name][i]) for t in tasks]
                writer.writerow(cells + ([str(data.info["split"][i])] if split else []))
    except OSError as exc:
        raise OutputError(f"cannot write table {path}: {exc.strerror or exc}") from None
    return path
