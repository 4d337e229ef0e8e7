"""`edgemtl predict` for a vector model: a CSV table of feature rows in, one prediction per row out, as JSON
lines (predictions.jsonl) or CSV (predictions.csv, one column per result field).

The table's columns are matched to the model's features by name (the metadata's order is the graph's);
other columns are ignored. Empty feature cells are filled with the training means where the model was
trained so (`missing_features = "mean"`), and are an error naming the row and column otherwise.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from edgemtl import jsonfile
from edgemtl.data.table import TableColumns, read_table
from edgemtl.errors import ConfigError, DataError, OutputError
from edgemtl.runtime import Engine, Prediction

TABLE_FORMATS = ("jsonl", "csv")
_CHUNK = 1024  # rows per Engine call: large batches amortize the per-run overhead


def flat_fields(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Nested result dicts as (dotted name, cell) pairs: `risk.probabilities.low`; lists joined by `;`."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from flat_fields(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list | tuple):
        yield prefix, ";".join(str(v) for v in value)
    else:
        yield prefix, value


def table_predictions(engine: Engine, table: Path) -> tuple[list[int], list[Prediction]]:
    """The table's rows (by line) and the model's prediction for each."""
    features = engine.features
    try:
        rows = read_table(table, TableColumns(features.names, features.missing), ())
    except DataError as exc:
        if "no feature column" not in str(exc):
            raise
        shown = ", ".join(features.names[:6]) + (", ..." if features.count > 6 else "")
        reason = str(exc).split(":", 1)[0]
        raise DataError(f"{reason}: the model takes {features.count} features ({shown}); add the column") from None
    rows = rows.filled(features)
    predictions: list[Prediction] = []
    for start in range(0, len(rows), _CHUNK):
        predictions += engine.predict_features(rows.features[start : start + _CHUNK])
    return [int(r) for r in rows.info["row"]], predictions


def write_predictions(path: Path, lines: list[int], predictions: list[Prediction], fmt: str) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as file:
            if fmt == "jsonl":
                for line, prediction in zip(lines, predictions):
                    file.write(jsonfile.dumps({"row": line, **prediction.to_dict()}) + "\n")
                return
            records = [dict(flat_fields("", {"row": line, **p.to_dict()})) for line, p in zip(lines, predictions)]
            writer = csv.DictWriter(file, fieldnames=list(records[0]) if records else ["row"])
            writer.writeheader()
            writer.writerows(records)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def predict_table(engine: Engine, table: Path, out_dir: Path, fmt: str = "jsonl") -> tuple[int, float, Path]:
    """Predictions for every row of `table` in `out_dir`; (rows, seconds, the file written)."""
    if fmt not in TABLE_FORMATS:
        raise ConfigError(f"unknown predictions format {fmt!r}: expected one of {', '.join(TABLE_FORMATS)}")
    start = time.perf_counter()
    lines, predictions = table_predictions(engine, Path(table))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"predictions.{fmt}"
    write_predictions(path, lines, predictions, fmt)
    return len(predictions), time.perf_counter() - start, path
