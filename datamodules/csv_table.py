"""Reading numeric CSV tables with errors that name the file, row and column."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class DataError(ValueError):
    """Bad input data; the message says where and what to do."""


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


DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab ('\\t')", "|": "'|'"}


def read_csv_text(path: str | Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> TextTable:
    """Header and cells as text. Blank lines are skipped; errors name the file and its line numbers."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a CSV file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}. Check the path in the config or on the command line.")
    try:
        with path.open(newline="", encoding=encoding) as f:
            return _parse_rows(path, csv.reader(f, delimiter=delimiter, strict=True), delimiter)
    except UnicodeDecodeError:
        raise DataError(_undecodable(path, encoding)) from None
    except LookupError:
        raise DataError(
            f"data.encoding {encoding!r} is not a text encoding Python knows; try utf-8 or latin-1."
        ) from None


def _parse_rows(path: Path, reader: Any, delimiter: str) -> TextTable:
    """The rows of a ``csv.reader`` (strict quoting), each with the line it starts on."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    row_start = 1  # the line a row begins on; a quoted cell may carry it over several lines
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if "end of data" in str(error):
                raise DataError(
                    f'{path}, line {row_start}: a quote (") opened on this line is never closed. Close the quote, '
                    "or remove it."
                ) from None
            raise DataError(f"{path}, line {row_start}: not readable as CSV ({error}). Fix the quoting.") from None
        start, row_start = row_start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if header is None:
            header = cells
            _check_header(path, header, start, delimiter)
            continue
        if len(cells) != len(header):
            spans = f" (a quoted cell runs from line {start} to {reader.line_num})" if reader.line_num > start else ""
            raise DataError(
                f"{path}, line {start}: {len(cells)} cells but the header has {len(header)} columns "
                f"({', '.join(header)}){spans}. Fix the row or the header."
            )
        rows.append(cells)
        lines.append(start)
    if header is None:
        raise DataError(f"{path}: the file is empty. It needs a header row and at least one data row.")
    if not rows:
        raise DataError(f"{path}: only a header ({', '.join(header)}) and no data rows. Add data rows.")
    return TextTable(path, header, rows, lines)


def _check_header(path: Path, header: list[str], line: int, delimiter: str) -> None:
    if len(header) == 1:
        for other in DELIMITER_NAMES:
            if other != delimiter and other in header[0]:
                raise DataError(
                    f"{path}, line {line}: the header is one column {header[0]!r}; this looks "
                    f"{DELIMITER_NAMES[other]}-separated. Set data.delimiter: {other!r}."
                )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated or "" in header:
        raise DataError(
            f"{path}, line {line}: the header needs unique, non-empty column names; got {header}. Rename the columns."
        )


def _undecodable(path: Path, encoding: str) -> str:
    """Which line first fails to decode, for the message."""
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as error:
            byte = raw[error.start]
            return (
                f"{path}, line {number}: byte 0x{byte:02x} is not {encoding} text (the file is binary, or saved in "
                "another encoding). Save it as UTF-8, or set data.encoding to its encoding, e.g. latin-1 or cp1252."
            )
    return f"{path}: not {encoding} text. Save it as UTF-8, or set data.encoding to its encoding, e.g. latin-1."


def parse_number(table: TextTable, i: int, j: int, role: str = "Feature") -> float:
    """Cell (row i, column j) as a finite float, or a DataError naming file, line and column."""
    text = table.rows[i][j]
    where = f"{table.path}, line {table.lines[i]}, column '{table.header[j]}'"
    if is_missing(text):
        raise DataError(f"{where}: missing value. Fill it in, or set data.missing: drop to skip such rows.")
    if "\n" in text:
        raise DataError(
            f"{where}: the cell runs over several lines ({text!r}), so a quote opened on line {table.lines[i]} is "
            "probably not closed where it should be. Fix the quoting."
        )
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


ONE_HOT_NAME = re.compile(r"(.*?)_?(\d+)")


def one_hot_block(table: TextTable) -> list[str]:
    """Trailing columns named like ``y_0, y_1`` (or ``class0, class1``: one prefix) holding exactly one 1
    per row and 0 elsewhere; [] when there is no such block of at least two columns."""
    names: list[str] = []
    prefix = None
    for name in reversed(table.header):
        match = ONE_HOT_NAME.fullmatch(name)
        if match is None or (prefix is not None and match.group(1) != prefix):
            break
        prefix = match.group(1)
        names.insert(0, name)
    if len(names) < 2 or len(names) == len(table.header):
        return []
    columns = [table.header.index(n) for n in names]
    for row in table.rows:
        values = [_as_float(row[j]) for j in columns]
        if any(v not in (0.0, 1.0) for v in values) or sum(values) != 1:  # type: ignore[arg-type]
            return []
    return names


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def features_and_class_labels(table: TextTable) -> tuple[np.ndarray, np.ndarray]:
    """Every column but the label is a feature; the label is the last column (integers >= 0) or a
    trailing one-hot block."""
    block = one_hot_block(table)
    label_columns = [table.header.index(n) for n in block] or [len(table.header) - 1]
    x = numeric_columns(table, [j for j in range(len(table.header)) if j not in label_columns])
    if block:
        return x, numeric_columns(table, label_columns, role="One-hot label").argmax(1).astype(np.int64)
    label = numeric_columns(table, label_columns, role="Label")[:, 0]
    bad = np.flatnonzero((label != np.round(label)) | (label < 0))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{table.path}, line {table.lines[i]}, column '{table.header[-1]}': class labels must be integers >= 0, "
            f"got {table.rows[i][-1]!r}."
        )
    return x, label.astype(np.int64)
