"""Reading numeric CSV tables into numbers, with errors that name the file, line and column.

A table holds float64 numbers, not its cells' text: as Python strings, a large file's cells cost many times its size.
Each cell that is not a finite number is kept as its kind (missing, text, not finite, running over lines), so
every error still names its file, line and column; the few texts a caller needs (class labels, a cell an error
quotes, the rows a prediction repeats) are read from the file again.
"""

from __future__ import annotations

import csv
import math
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad input data; the message says where and what to do."""


MISSING_MARKERS = ("", "nan", "na", "n/a", "null", "none")
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab ('\\t')", "|": "'|'"}


class CellKind(IntEnum):
    """What a cell holds; every kind but NUMBER is stored as NaN."""

    NUMBER = 0
    MISSING = 1
    TEXT = 2
    NOT_FINITE = 3
    MULTILINE = 4


def is_missing(text: str) -> bool:
    return text.lower() in MISSING_MARKERS


def check_delimiter(delimiter: str) -> None:
    """The csv module's own check of ``data.delimiter``, as a message naming the key (it raises a TypeError)."""
    try:
        csv.reader([], delimiter=delimiter)
    except TypeError as error:
        raise DataError(
            f"data.delimiter is {delimiter!r}, but {error}. Use one character, e.g. ',' or ';' (a tab: '\\t')."
        ) from None


def classify(cell: str) -> tuple[float, CellKind]:
    """A cell's number (NaN when it holds none) and kind."""
    text = cell.strip()
    if is_missing(text):
        return math.nan, CellKind.MISSING
    if "\n" in text:
        return math.nan, CellKind.MULTILINE
    try:
        value = float(text)
    except ValueError:
        return math.nan, CellKind.TEXT
    return (value, CellKind.NUMBER) if math.isfinite(value) else (math.nan, CellKind.NOT_FINITE)


def csv_rows(path: Path, encoding: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """Every non-blank row, header first, as (line it starts on, line it ends on, cells); a decoding or quoting
    error is a DataError naming the line."""
    if not path.is_file():
        what = "is a directory, not a CSV file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}. Check the path in the config or on the command line.")
    try:
        with path.open(newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            row_start = 1  # the line a row begins on; a quoted cell may carry it over several lines
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    if "end of data" in str(error):
                        raise DataError(
                            f'{path}, line {row_start}: a quote (") opened on this line is never closed. Close the '
                            "quote, or remove it."
                        ) from None
                    raise DataError(
                        f"{path}, line {row_start}: not readable as CSV ({error}). Fix the quoting."
                    ) from None
                start, row_start = row_start, reader.line_num + 1
                if "".join(row).strip():
                    yield start, reader.line_num, row
    except UnicodeDecodeError:
        raise DataError(_undecodable(path, encoding)) from None
    except LookupError:
        raise DataError(
            f"data.encoding {encoding!r} is not a text encoding Python knows; try utf-8 or latin-1."
        ) from None


@dataclass
class CsvFile:
    """A CSV as read: the header, every cell as float64 (NaN where it is not a finite number), the kind of every
    cell (None when all are finite numbers) and the line each row starts on. Splits cut from it share it."""

    path: Path
    header: list[str]
    values: np.ndarray  # (rows, columns) float64
    kinds: np.ndarray | None  # (rows, columns) uint8 CellKind
    lines: np.ndarray  # (rows,) int64
    encoding: str
    delimiter: str
    texts: dict[int, list[str]] = field(default_factory=dict)  # columns read again as text, see column_texts

    def data_rows(self) -> Iterator[list[str]]:
        """The data rows' cells as text, read from the file again."""
        rows = csv_rows(self.path, self.encoding, self.delimiter)
        next(rows)  # the header
        return (row for _, _, row in rows)

    def column_texts(self, column: int) -> list[str]:
        """Column ``column`` of every row as text, read again once; equal texts share one string, so a label
        column costs a reference per row."""
        if column not in self.texts:
            shared: dict[str, str] = {}
            self.texts[column] = [
                shared.setdefault(text, text) for text in (r[column].strip() for r in self.data_rows())
            ]
        return self.texts[column]


@dataclass(frozen=True, eq=False)
class CsvTable:
    """Rows of a :class:`CsvFile` (all of them, or a split), in file order."""

    file: CsvFile
    rows: np.ndarray  # (n,) int64 indices into the file's rows, ascending

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def header(self) -> list[str]:
        return self.file.header

    @property
    def lines(self) -> np.ndarray:
        return self.file.lines[self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def numbers(self, columns: list[int]) -> np.ndarray:
        """A (rows, len(columns)) float64 copy; NaN where a cell is not a finite number."""
        return self.file.values[np.ix_(self.rows, columns)]

    def kinds(self, columns: list[int]) -> np.ndarray | None:
        """The cells' :class:`CellKind` codes, (rows, len(columns)); None when every cell of the file is a number."""
        return None if self.file.kinds is None else self.file.kinds[np.ix_(self.rows, columns)]

    def is_numeric(self, column: int) -> bool:
        kinds = self.kinds([column])
        return kinds is None or not kinds.any()

    def texts(self, column: int) -> list[str]:
        texts = self.file.column_texts(column)
        return [texts[i] for i in self.rows]

    def cell(self, i: int, column: int) -> str:
        """The text of one cell (row ``i`` of this table), read from the file again: for messages only."""
        wanted = int(self.rows[i])
        for index, row in enumerate(self.file.data_rows()):
            if index == wanted:
                return row[column].strip()
        raise DataError(f"{self.path}: the file changed while it was being read. Run the command again.")

    def text_rows(self) -> list[list[str]]:
        """Every row of this table as its cells' text, read from the file again (what a prediction repeats)."""
        wanted = set(self.rows.tolist())
        return [[cell.strip() for cell in row] for index, row in enumerate(self.file.data_rows()) if index in wanted]

    def subset(self, rows: np.ndarray) -> CsvTable:
        """These rows (indices into this table) in file order."""
        return CsvTable(self.file, self.rows[np.sort(rows)])


def read_csv_text(path: str | Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> CsvTable:
    """A CSV file's text read into numbers. Blank lines are skipped; errors name the file and its line numbers.
    Rows whose cells are all finite numbers take a fast path; the others are classified cell by cell."""
    path = Path(path)
    check_delimiter(delimiter)
    rows = csv_rows(path, encoding, delimiter)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: the file is empty. It needs a header row and at least one data row.")
    header = [cell.strip() for cell in first[2]]
    _check_header(path, header, first[0], delimiter)
    values, lines, kinds = array("d"), array("q"), None
    for start, end, row in rows:
        if len(row) != len(header):
            spans = f" (a quoted cell runs from line {start} to {end})" if end > start else ""
            raise DataError(
                f"{path}, line {start}: {len(row)} cells but the header has {len(header)} columns "
                f"({', '.join(header)}){spans}. Fix the row or the header."
            )
        try:
            numbers = list(map(float, row))
            total = sum(numbers)
            if total - total != 0:  # an inf or NaN among them (or a sum that overflows): classify each cell
                raise ValueError
            cell_kinds = None
        except ValueError:
            numbers, cell_kinds = zip(*map(classify, row))
        if cell_kinds is not None and kinds is None:
            kinds = bytearray(len(lines) * len(header))
        if kinds is not None:
            kinds += bytes(cell_kinds) if cell_kinds is not None else bytes(len(header))
        values.extend(numbers)
        lines.append(start)
    if not lines:
        raise DataError(f"{path}: only a header ({', '.join(header)}) and no data rows. Add data rows.")
    width = len(header)
    file = CsvFile(
        path,
        header,
        np.frombuffer(values, dtype=np.float64).reshape(-1, width),  # the array's own memory, not a copy
        None if kinds is None else np.frombuffer(kinds, dtype=np.uint8).reshape(-1, width),
        np.frombuffer(lines, dtype=np.int64),
        encoding,
        delimiter,
    )
    return CsvTable(file, np.arange(len(lines)))


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


def cell_problem(table: CsvTable, i: int, column: int, kind: CellKind, role: str) -> str:
    """Why cell (row ``i``, ``column``) is not a number, naming file, line and column."""
    line = int(table.lines[i])
    where = f"{table.path}, line {line}, column '{table.header[column]}'"
    if kind == CellKind.MISSING:
        return f"{where}: missing value. Fill it in, or set data.missing: drop to skip such rows."
    text = table.cell(i, column)
    if kind == CellKind.MULTILINE:
        return (
            f"{where}: the cell runs over several lines ({text!r}), so a quote opened on line {line} is probably "
            "not closed where it should be. Fix the quoting."
        )
    if kind == CellKind.NOT_FINITE:
        return f"{where}: {text!r} is not a finite number. Replace it with a real value."
    return (
        f"{where}: {text!r} is not a number. {role} cells must be numeric; drop the column (drop_columns) or fix "
        "the cell."
    )


def numeric_columns(table: CsvTable, columns: list[int], role: str = "Feature") -> np.ndarray:
    """The given columns as a float64 array (rows, len(columns)); the first cell (by row, then column) that is
    not a finite number is a DataError naming it."""
    kinds = table.kinds(columns)
    if kinds is not None and kinds.any():
        i, k = divmod(int(np.argmax(kinds.ravel() != 0)), len(columns))
        raise DataError(cell_problem(table, i, columns[k], CellKind(kinds[i, k]), role))
    return table.numbers(columns)


ONE_HOT_NAME = re.compile(r"(.*?)_?(\d+)")


def one_hot_block(table: CsvTable) -> list[str]:
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
    kinds = table.kinds(columns)
    values = table.numbers(columns)
    if (kinds is not None and kinds.any()) or not np.isin(values, (0.0, 1.0)).all() or (values.sum(1) != 1).any():
        return []
    return names


def features_and_class_labels(table: CsvTable) -> tuple[np.ndarray, np.ndarray]:
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
            f"got {table.cell(i, len(table.header) - 1)!r}."
        )
    return x, label.astype(np.int64)
