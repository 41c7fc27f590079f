"""W13: the memory a large numeric CSV costs to read, in a fresh process.

A ~270 MB (259 MiB) file of numbers (10 standard-normal features written with 9 significant digits, and a 0/1 label) is
written to a temporary folder, then read by ``CSVDataModule`` as ``fit`` reads it (the fitted state, standardised,
and the training tensors) in a child process, so that the peak is that process's own (Linux's VmHWM): the whole
process's, imports included, and what reading added to the memory the process held before it started.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import current_rss_mb, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
FEATURES = 10
TARGET_BYTES = 270_000_000
ROWS_PER_CHUNK = 100_000


def write_numeric_csv(
    path: Path, target_bytes: int = TARGET_BYTES, rows_per_chunk: int = ROWS_PER_CHUNK, seed: int = 0
) -> int:
    """Chunks of rows until the file reaches ``target_bytes``; returns the number of data rows."""
    rng = np.random.default_rng(seed)
    rows = 0
    with path.open("w") as f:
        f.write(",".join([f"x{j}" for j in range(FEATURES)] + ["label"]) + "\n")
        while f.tell() < target_bytes:
            features = rng.standard_normal((rows_per_chunk, FEATURES))
            labels = (features[:, 0] + features[:, 1] > 0).astype(np.float64)[:, None]
            np.savetxt(f, np.hstack([features, labels]), fmt=["%.9g"] * FEATURES + ["%d"], delimiter=",")
            rows += rows_per_chunk
    return rows


def load(path: Path) -> dict[str, float]:
    """Read ``path`` as ``fit`` does, in this process: the memory before and at the peak, and the seconds."""
    from datamodules import CSVDataModule  # imported here: its imports count in "before", not in the reading

    before = current_rss_mb()
    start = time.perf_counter()
    datamodule = CSVDataModule(str(path), normalize="standardize")
    datamodule.setup("fit")
    x, y = datamodule.tensors("train")
    seconds = time.perf_counter() - start
    return {
        "rows": len(x),
        "columns": x.shape[1] + 1,
        "seconds": seconds,
        "before_mb": before,
        "peak_mb": peak_rss_mb(),
    }


def run() -> dict[str, float]:
    """Write the file, read it in a fresh process, and relate the peaks to the file's size."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "numbers.csv"
        write_numeric_csv(path)
        file_mb = path.stat().st_size / 2**20
        command = [sys.executable, "-m", "benchmarks.w13_csv_memory", "--load", str(path)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    own = result["peak_mb"] - result["before_mb"]
    return {
        **result,
        "file_mb": file_mb,
        "own_mb": own,
        "peak_per_file": result["peak_mb"] / file_mb,
        "own_per_file": own / file_mb,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="read one CSV as fit does and print the memory it took, as JSON")
    parser.add_argument("--load", type=Path, required=True)
    print(json.dumps(load(parser.parse_args().load)))
