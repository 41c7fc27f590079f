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


MISSING_MARKERS = ("", "nan", "na", "n/a", "null", "none")


@dataclass
class TextTable:
    """A CSV as read: stripped header names and cell text, with each row's line number in the file."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]


def is_missing(text: str) -> bool:
    return text.lower() in MISSING_MARKERS


def read_csv_text(path: str | Path) -> TextTable:
    """Header and cells as text. Blank lines are skipped; errors name the file and its line numbers."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a CSV file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}. Check the path in the config or on the command line.")
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row]
            if header is None:
                header = cells
                duplicated = sorted({h for h in header if header.count(h) > 1})
                if duplicated or "" in header:
                    raise DataError(
                        f"{path}, line {reader.line_num}: the header needs unique, non-empty column names; "
                        f"got {header}. Rename the columns."
                    )
                continue
            if len(cells) != len(header):
                raise DataError(
                    f"{path}, line {reader.line_num}: {len(cells)} cells but the header has {len(header)} columns "
                    f"({', '.join(header)}). Fix the row or the header."
                )
            rows.append(cells)
            lines.append(reader.line_num)
    if header is None:
        raise DataError(f"{path}: the file is empty. It needs a header row and at least one data row.")
    if not rows:
        raise DataError(f"{path}: only a header ({', '.join(header)}) and no data rows. Add data rows.")
    return TextTable(path, header, rows, lines)


def parse_number(table: TextTable, i: int, j: int, role: str = "Feature") -> float:
    """Cell (row i, column j) as a finite float, or a DataError naming file, line and column."""
    text = table.rows[i][j]
    where = f"{table.path}, line {table.lines[i]}, column '{table.header[j]}'"
    if is_missing(text):
        raise DataError(f"{where}: missing value. Fill it in, or set data.missing: drop to skip such rows.")
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{where}: {text!r} is not a number. {role} cells must be numeric; "
            "drop the column (drop_columns) or fix the cell."
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {text!r} is not a finite number. Replace it with a real value.")
    return value


def numeric_columns(table: TextTable, columns: list[int], role: str = "Feature") -> np.ndarray:
    """The given columns as a float64 array (rows, len(columns))."""
    out = np.empty((len(table.rows), len(columns)), dtype=np.float64)
    for i in range(len(table.rows)):
        for k, j in enumerate(columns):
            out[i, k] = parse_number(table, i, j, role)
    return out


def read_numeric_csv(path: str | Path) -> NumericTable:
    """A CSV with a header row and numeric cells. Row numbers in errors are file line numbers."""
    table = read_csv_text(path)
    values = numeric_columns(table, list(range(len(table.header))), role="Feature and label")
    return NumericTable(table.path, table.header, values)


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
