"""The CSV reader holds numbers, not strings: a numeric table costs at most 3x its file's size to read, and
reads back exactly what was written; W13 measures the same on a 270 MB file."""

from __future__ import annotations

import tracemalloc

import numpy as np

from benchmarks.w13_csv_memory import FEATURES, load, write_numeric_csv
from datamodules import CSVDataModule


def test_a_numeric_csv_is_read_in_at_most_three_times_its_size(tmp_path) -> None:
    path = tmp_path / "numbers.csv"
    rows = write_numeric_csv(path, target_bytes=2_000_000, rows_per_chunk=2_000)
    size = path.stat().st_size
    tracemalloc.start()  # numpy and array.array report their buffers to it
    try:
        datamodule = CSVDataModule(str(path), normalize="standardize")
        datamodule.setup("fit")
        x, y = datamodule.tensors("train")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * size, f"reading took {peak / size:.1f}x the file's {size} bytes"
    written = np.loadtxt(path, delimiter=",", skiprows=1)
    features = written[:, :FEATURES]
    assert x.shape == (rows, FEATURES)
    np.testing.assert_allclose(x.numpy(), (features - features.mean(0)) / features.std(0), rtol=0, atol=1e-12)
    assert np.array_equal(y.numpy(), written[:, FEATURES].astype(np.int64))


def test_the_w13_benchmark_reads_its_file_as_fit_does(tmp_path) -> None:
    path = tmp_path / "numbers.csv"
    rows = write_numeric_csv(path, target_bytes=5_000, rows_per_chunk=50)
    result = load(path)
    assert (result["rows"], result["columns"]) == (rows, FEATURES + 1)
    assert result["peak_mb"] >= result["before_mb"] > 0 and result["seconds"] > 0
