"""Class labels from a CSV column: integers as they are, text mapped to class indices.

The mapping is fitted on the training file, reported, and kept in the DataModule's state so a
checkpoint predicts with the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.csv_table import CsvTable, DataError, is_missing


def _as_class_index(text: str) -> int | None:
    """An integer label >= 0 written as ``2`` or ``2.0``; None for anything else."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def one_class_only(table: CsvTable, column: int, label: str) -> DataError:
    return DataError(
        f"{table.path}, column '{table.header[column]}': every training row has the label {label!r}; with one "
        "class only there is nothing to learn. Check data.label and the file, or add rows of the other classes."
    )


def not_a_class(table: CsvTable, column: int, i: int, label: str) -> DataError:
    return DataError(
        f"{table.path}, line {table.lines[i]}, column '{table.header[column]}': {label!r} is not a class. Class "
        "labels are integers >= 0 or text; for a numeric target set data.task: regression."
    )


@dataclass
class ClassMapping:
    """``names[k]`` is the label text of class ``k``. With ``numeric`` the labels are the class indices."""

    names: list[str]
    numeric: bool

    @classmethod
    def fit(
        cls, table: CsvTable, column: int, classes: list[str] | None = None, positive_class: str | None = None
    ) -> ClassMapping:
        """Integers >= 0 stay class indices; text is sorted, or ordered as ``classes``, or mapped to
        ``positive_class`` -> 1 and the other label -> 0. A column of numbers is read as numbers."""
        if not classes and positive_class is None and table.is_numeric(column):
            return cls.fit_numbers(table, column)
        labels = table.texts(column)
        distinct = sorted(set(labels))
        if len(distinct) < 2:
            raise one_class_only(table, column, distinct[0])
        if classes:
            return cls([str(c) for c in classes], numeric=False)
        if positive_class is not None:
            if positive_class not in distinct or len(distinct) != 2:
                raise DataError(
                    f"{table.path}, column '{table.header[column]}': positive_class {positive_class!r} needs exactly "
                    f"two labels including it; the file has {distinct}. Set data.positive_class to one of them, or "
                    "list data.classes."
                )
            other = next(d for d in distinct if d != positive_class)
            return cls([other, positive_class], numeric=False)
        indices = [_as_class_index(text) for text in labels]
        if all(k is not None for k in indices):
            return cls([str(k) for k in range(max(indices) + 1)], numeric=True)  # type: ignore[type-var]
        if all(_is_number(text) for text in labels):
            bad = next(i for i, k in enumerate(indices) if k is None)
            raise not_a_class(table, column, bad, labels[bad])
        return cls(distinct, numeric=False)

    @classmethod
    def fit_numbers(cls, table: CsvTable, column: int) -> ClassMapping:
        """Class indices from a column of finite numbers: each must be an integer >= 0."""
        labels = table.numbers([column])[:, 0]
        if len(np.unique(labels)) < 2:
            raise one_class_only(table, column, table.cell(0, column))
        bad = np.flatnonzero((labels != np.floor(labels)) | (labels < 0))
        if bad.size:
            raise not_a_class(table, column, int(bad[0]), table.cell(int(bad[0]), column))
        return cls([str(k) for k in range(int(labels.max()) + 1)], numeric=True)

    def encode(self, table: CsvTable, column: int) -> np.ndarray:
        """Class indices (int64) for every row; unknown labels name file, line and column."""
        if self.numeric and table.is_numeric(column):
            labels = table.numbers([column])[:, 0]
            unknown = np.flatnonzero((labels != np.floor(labels)) | (labels < 0) | (labels >= len(self.names)))
            if unknown.size:
                raise self.unknown_label(table, column, int(unknown[0]), table.cell(int(unknown[0]), column))
            return labels.astype(np.int64)
        lookup = {name: k for k, name in enumerate(self.names)}
        out = np.empty(len(table), dtype=np.int64)
        for i, text in enumerate(table.texts(column)):
            k = _as_class_index(text) if self.numeric else lookup.get(text)
            if k is None or k >= len(self.names):
                raise self.unknown_label(table, column, i, text)
            out[i] = k
        return out

    def unknown_label(self, table: CsvTable, column: int, i: int, text: str) -> DataError:
        """A label outside the mapping, or missing, named by file, line and column."""
        where = f"{table.path}, line {table.lines[i]}, column '{table.header[column]}'"
        if is_missing(text):
            return DataError(f"{where}: missing label. Fill it in, or set data.missing: drop.")
        return DataError(
            f"{where}: label {text!r} is not in the class mapping learned from the training data "
            f"({self.describe()}). Fix the cell, or list every class in data.classes."
        )

    def describe(self) -> str:
        return ", ".join(f"{name!r} -> {k}" for k, name in enumerate(self.names))

    def state(self) -> dict[str, object]:
        return {"names": list(self.names), "numeric": self.numeric}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> ClassMapping:
        return cls(list(state["names"]), bool(state["numeric"]))  # type: ignore[arg-type]
