"""Reading numeric CSV tables with errors that name the file, row and column."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad input data; the message says where and what to do."""


@dataclass
class NumericTable:
    path: Path
    header: list[str]
    values: np.ndarray  # (rows, columns), float64


def read_numeric_csv(path: str | Path) -> NumericTable:
    """A CSV with a header row and numeric cells. Row numbers in errors are file line numbers."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Check the path, or remove it from the config to use the default data."
        )
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty. It needs a header row and at least one data row.")
    header = [h.strip() for h in rows[0]]
    if len(rows) == 1:
        raise DataError(f"{path}: only a header ({', '.join(header)}) and no data rows.")
    values = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise DataError(f"{path}, line {line}: {len(row)} cells but the header has {len(header)} columns.")
        for j, cell in enumerate(row):
            text = cell.strip()
            if text == "" or text.lower() in ("nan", "na", "null"):
                raise DataError(
                    f"{path}, line {line}, column '{header[j]}': missing value. Fill it in or drop the row."
                )
            try:
                values[i, j] = float(text)
            except ValueError:
                raise DataError(
                    f"{path}, line {line}, column '{header[j]}': {text!r} is not a number. "
                    "Feature and label cells must be numeric."
                ) from None
            if not math.isfinite(values[i, j]):
                raise DataError(f"{path}, line {line}, column '{header[j]}': {text!r} is not a finite number.")
    return NumericTable(path, header, values)


def one_hot_label_width(table: NumericTable) -> int:
    """How many trailing columns form a one-hot label: names like ``y0, y1`` or ``class_0, class_1``
    with exactly one 1 per row and zeros elsewhere; otherwise 1 (a plain label column)."""
    match = re.fullmatch(r"(.*?)[_]?(\d+)", table.header[-1])
    if match is None:
        return 1
    prefix = match.group(1)
    width = 0
    for name in reversed(table.header[:-1] + [table.header[-1]]):
        m = re.fullmatch(r"(.*?)[_]?(\d+)", name)
        if m is None or m.group(1) != prefix:
            break
        width += 1
    if width < 2 or width >= len(table.header):
        return 1
    block = table.values[:, -width:]
    is_one_hot = np.isin(block, (0.0, 1.0)).all() and (block.sum(1) == 1).all()
    return width if is_one_hot else 1


def features_and_class_labels(table: NumericTable) -> tuple[np.ndarray, np.ndarray]:
    """Every column but the label is a feature; the label is the last column or a one-hot block."""
    width = one_hot_label_width(table)
    x = table.values[:, :-width]
    if width > 1:
        return x, table.values[:, -width:].argmax(1).astype(np.int64)
    label = table.values[:, -1]
    if not np.all(label == np.round(label)) or label.min() < 0:
        bad = int(np.flatnonzero((label != np.round(label)) | (label < 0))[0])
        raise DataError(
            f"{table.path}, line {bad + 2}, column '{table.header[-1]}': class labels must be integers >= 0, "
            f"got {label[bad]!r}."
        )
    return x, label.astype(np.int64)
