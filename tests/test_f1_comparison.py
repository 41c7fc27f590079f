"""The F1 comparison table: CPU rows in float32 and float64, appended across runs."""

from __future__ import annotations

import csv

import pytest
import torch

from callbacks.f1_comparison import COLUMNS, F1Comparison
from datamodules.week04 import Week04DataModule
from models import ManualModule, MLPSpec, NativeModule
from tests.conftest import quiet_trainer

WEEK04 = dict(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False, init_std=0.2)


def evaluate_run(tmp_path, module_class, table) -> tuple[F1Comparison, dict]:
    dm = Week04DataModule()
    callback = F1Comparison(table_path=str(table))
    trainer = quiet_trainer(tmp_path, callbacks=[callback])
    metrics = trainer.test(module_class(MLPSpec(**WEEK04, init_seed=3)), datamodule=dm, verbose=False)[0]
    return callback, metrics


def read(table) -> list[dict]:
    with table.open(newline="") as f:
        return list(csv.DictReader(f))


def test_cpu_float32_and_float64_rows_are_appended_for_each_run(tmp_path) -> None:
    table = tmp_path / "tables" / "f1.csv"
    callback, metrics = evaluate_run(tmp_path, ManualModule, table)
    rows = read(table)
    assert [(r["model"], r["accelerator"], r["dtype"]) for r in rows] == [
        ("ManualModule", "cpu", "float32"),
        ("ManualModule", "cpu", "float64"),
    ]
    for row in rows:
        assert float(row["f1"]) == pytest.approx(metrics["test/f1"], abs=1e-6)
        assert float(row["precision"]) == pytest.approx(metrics["test/precision"], abs=1e-6)
        assert float(row["recall"]) == pytest.approx(metrics["test/recall"], abs=1e-6)
        assert row["net"] == "2-3-3-2 sigmoid softmax_ce" and row["host"] and row["timestamp"]
    assert float(rows[0]["max_row_diff"]) == 0.0
    assert 0.0 < float(rows[0]["max_logit_diff"]) < 1e-5 and float(rows[1]["max_logit_diff"]) == 0.0
    if not torch.cuda.is_available():
        assert callback.unavailable["cuda"] == "no CUDA device"

    evaluate_run(tmp_path, NativeModule, table)  # a second run lines up below the first
    rows = read(table)
    assert [r["model"] for r in rows] == ["ManualModule"] * 2 + ["NativeModule"] * 2
    markdown = table.with_suffix(".md").read_text().splitlines()
    assert markdown[0] == "| " + " | ".join(COLUMNS) + " |" and len(markdown) == 2 + 4
    assert "| NativeModule | 2-3-3-2 sigmoid softmax_ce | cpu | cpu | float64 |" in markdown[-1]


def test_a_table_with_other_columns_is_refused(tmp_path) -> None:
    table = tmp_path / "old.csv"
    table.write_text("model,f1\nx,0.5\n")
    with pytest.raises(ValueError, match=r"old\.csv: its header"):
        evaluate_run(tmp_path, ManualModule, table)
