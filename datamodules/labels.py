"""Class labels from a CSV column: integers as they are, text mapped to class indices.

The mapping is fitted on the training file, reported, and kept in the DataModule's state so a
checkpoint predicts with the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.csv_table import DataError, TextTable, is_missing


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


@dataclass
class ClassMapping:
    """``names[k]`` is the label text of class ``k``. With ``numeric`` the labels are the class indices."""

    names: list[str]
    numeric: bool

    @classmethod
    def fit(
        cls, table: TextTable, column: int, classes: list[str] | None = None, positive_class: str | None = None
    ) -> ClassMapping:
        """Integers >= 0 stay class indices; text is sorted, or ordered as ``classes``, or mapped to
        ``positive_class`` -> 1 and the other label -> 0."""
        where = f"{table.path}, column '{table.header[column]}'"
        labels = [row[column] for row in table.rows]
        distinct = sorted(set(labels))
        if len(distinct) < 2:
            raise DataError(
                f"{where}: every training row has the label {distinct[0]!r}; with one class only there is "
                "nothing to learn. Check data.label and the file, or add rows of the other classes."
            )
        if classes:
            return cls([str(c) for c in classes], numeric=False)
        if positive_class is not None:
            if positive_class not in distinct or len(distinct) != 2:
                raise DataError(
                    f"{where}: positive_class {positive_class!r} needs exactly two labels including it; the "
                    f"file has {distinct}. Set data.positive_class to one of them, or list data.classes."
                )
            other = next(d for d in distinct if d != positive_class)
            return cls([other, positive_class], numeric=False)
        indices = [_as_class_index(text) for text in labels]
        if all(k is not None for k in indices):
            return cls([str(k) for k in range(max(indices) + 1)], numeric=True)  # type: ignore[type-var]
        if all(_is_number(text) for text in labels):
            bad = next(i for i, k in enumerate(indices) if k is None)
            raise DataError(
                f"{table.path}, line {table.lines[bad]}, column '{table.header[column]}': {labels[bad]!r} is not "
                "a class. Class labels are integers >= 0 or text; for a numeric target set data.task: regression."
            )
        return cls(distinct, numeric=False)

    def encode(self, table: TextTable, column: int) -> np.ndarray:
        """Class indices (int64) for every row; unknown labels name file, line and column."""
        lookup = {name: k for k, name in enumerate(self.names)}
        out = np.empty(len(table.rows), dtype=np.int64)
        for i, row in enumerate(table.rows):
            text = row[column]
            k = _as_class_index(text) if self.numeric else lookup.get(text)
            if k is None or k >= len(self.names):
                where = f"{table.path}, line {table.lines[i]}, column '{table.header[column]}'"
                if is_missing(text):
                    raise DataError(f"{where}: missing label. Fill it in, or set data.missing: drop.")
                raise DataError(
                    f"{where}: label {text!r} is not in the class mapping learned from the training data "
                    f"({self.describe()}). Fix the cell, or list every class in data.classes."
                )
            out[i] = k
        return out

    def describe(self) -> str:
        return ", ".join(f"{name!r} -> {k}" for k, name in enumerate(self.names))

    def state(self) -> dict[str, object]:
        return {"names": list(self.names), "numeric": self.numeric}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> ClassMapping:
        return cls(list(state["names"]), bool(state["numeric"]))  # type: ignore[arg-type]
