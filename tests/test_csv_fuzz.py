"""Generated CSV files either load into finite tensors or fail with a DataError naming the file; never
anything else. The budget is fixed and the examples derandomised, so CI runs the same cases every time."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamodules import CSVDataModule
from datamodules.csv_table import DataError, features_and_class_labels, read_csv_text

FINITE = st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-5, 5).map(str))
EXTREME = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e308", "-1e308", "1e200", "1.7976931348623157e308", "5e-324", "-0.0", "1_000", "0x10"]),
)
TEXT = st.one_of(
    st.sampled_from(["", " ", "NaN", "nan", "inf", "NA", "null", "yes", "Thrived", "Ça", "é"]),
    st.text(alphabet='ab,;"\t\n\r é\x00', max_size=6),
)
CELL = st.one_of(FINITE, EXTREME, TEXT)
LABEL = st.one_of(st.sampled_from(["0", "1", "yes", "no"]), st.sampled_from(["", "2", "1.5", "-1", "Ça"]), TEXT)
# Files that should load: numbers (some of them extreme) and two-class labels, so that the finite-tensor
# branch is exercised as often as the error branch.
TIDY_CELL = st.one_of(FINITE, FINITE, FINITE, FINITE, FINITE, FINITE, FINITE, EXTREME)
TIDY_LABEL = st.sampled_from(["0", "1"]) | st.sampled_from(["yes", "no"])


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """Bytes of a CSV (header, rows of random cells and a label) and the delimiter it was written with."""
    width = draw(st.integers(1, 4))
    tidy = draw(st.booleans())
    cell, label = (TIDY_CELL, TIDY_LABEL) if tidy else (CELL, LABEL)
    header = (
        [f"x{j}" for j in range(width)] + ["label"]
        if tidy
        else draw(
            st.one_of(
                st.just([f"x{j}" for j in range(width)] + ["label"]),
                st.just([f"x{j}" for j in range(width)] + ["y_0", "y_1"]),
                st.lists(st.sampled_from(["a", "b", "y_0", "y_1", "", "a;b", 'q"', "label"]), min_size=1, max_size=5),
            )
        )
    )
    ragged = not tidy and draw(st.booleans())  # rows of the wrong length
    sizes = st.integers(0, len(header) + 1) if ragged else st.just(len(header) - 1)
    rows = [
        draw(st.lists(cell, min_size=n, max_size=n)) + [draw(label)]
        for n in draw(st.lists(sizes, min_size=0, max_size=10))
    ]
    quote = draw(st.booleans())
    delimiter = draw(st.sampled_from([",", ",", ",", ";", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))

    def field(cell: str) -> str:
        return f'"{cell}"' if quote and cell and '"' not in cell else cell

    text = newline.join(delimiter.join(field(c) for c in line) for line in [header, *rows]) + newline
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig"] if tidy else ["utf-8", "utf-8-sig", "latin-1"]))
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    if not tidy and draw(st.integers(0, 3)) == 0:
        data = draw(st.binary(max_size=8)) + data  # stray bytes before the header
    return data, delimiter


def loads_or_names_the_file(path: Path, load) -> None:  # load: Callable[[str], tuple[np.ndarray, ...]]
    try:
        arrays = load(str(path))
    except DataError as error:
        assert str(path) in str(error), f"DataError without the file's name: {error}"
        return
    for array in arrays:
        assert np.isfinite(np.asarray(array, dtype=float)).all()


@pytest.mark.slow  # 150 generated files
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    file=csv_files(),
    normalize=st.sampled_from(["none", "standardize", "max"]),
    missing=st.sampled_from(["error", "drop"]),
)
def test_generated_csv_loads_finite_or_fails_naming_the_file(file: tuple[bytes, str], normalize, missing) -> None:
    data, written_with = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)

        def table_module(name: str) -> tuple[np.ndarray, ...]:
            dm = CSVDataModule(name, normalize=normalize, missing=missing, delimiter=written_with)
            dm.setup("fit")
            return tuple(t.numpy() for t in dm.tensors("train"))

        def week04_reader(name: str) -> tuple[np.ndarray, ...]:
            return features_and_class_labels(read_csv_text(name, delimiter=written_with))

        loads_or_names_the_file(path, table_module)
        loads_or_names_the_file(path, week04_reader)
