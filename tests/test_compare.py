"""``train.py compare``: both modules from one config, weights equal to 1e-9 in float64, table written."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from compare import FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, Comparison, compare_main, verdict
from tests.conftest import ROOT
from train import make_cli


def compare_args(tmp_path, epochs: int) -> list[str]:
    return [
        "--config",
        str(ROOT / "configs/week04.yaml"),
        "--trainer.max_epochs",
        str(epochs),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
    ]


@pytest.mark.slow
def test_compare_command_on_week04(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "compare", *compare_args(tmp_path, 2)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "identical initial weights: yes; identical data order (epoch 1): yes" in out
    assert "model" in out and "precision" in out and "recall" in out
    assert "manual (hand-derived)" in out and "native (autograd)" in out
    assert out.count("pred 0") == 2 and out.count("W3 (3, 2):") == 2
    assert "PASS: largest |w_manual - w_autograd| = " in out and "(tolerance 1e-09, float64)" in out

    parent = tmp_path / "runs" / "week04_compare" / "version_0"
    weights = {
        label: json.loads((parent / label / "weights_final.json").read_text())["weights"]
        for label in ("manual", "native")
    }
    diff = max(np.abs(np.array(weights["manual"][k]) - np.array(weights["native"][k])).max() for k in weights["manual"])
    assert diff <= 1e-9
    initial = json.loads((parent / "manual" / "weights_initial.json").read_text())["weights"]
    assert weights["manual"]["W1"] != initial["W1"]

    with (parent / "comparison.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["manual (hand-derived)", "native (autograd)"]
    assert rows[0]["f1"] == rows[1]["f1"] and 0.5 < float(rows[0]["f1"]) <= 1.0
    assert "PASS" in (parent / "comparison.md").read_text()

    assert not list(parent.glob("events.out.tfevents.*"))  # the parent is no TensorBoard run of its own
    for label in ("manual", "native"):  # same tag in two sub-runs: TensorBoard overlays them
        run = EventAccumulator(str(parent / label), size_guidance={"scalars": 0, "images": 0})
        run.Reload()
        assert len(run.Scalars("train/loss_update")) == 2 * 400
        assert ("compare/loss_curves" in run.Tags()["images"]) == (label == "manual")


@pytest.mark.slow
def test_compare_fails_when_the_runs_differ(tmp_path, capsys) -> None:
    def native_gets_another_learning_rate(args: list[str], run: bool = True):
        extra = ["--model.init_args.optimizer.init_args.lr", "0.2"] if "models.NativeModule" in args else []
        return make_cli([*args, *extra], run=run)

    assert compare_main(compare_args(tmp_path, 1), native_gets_another_learning_rate) == 1
    assert "FAIL: largest |w_manual - w_autograd|" in capsys.readouterr().out


def test_float32_fail_points_to_a_float64_rerun(tmp_path) -> None:
    def comparison(tolerance: float) -> Comparison:
        return Comparison({}, 3e-3, tolerance, False, True, True, tmp_path)

    assert "rerun with --trainer.precision 64-true" in verdict(comparison(FLOAT32_TOLERANCE))
    assert "rerun" not in verdict(comparison(FLOAT64_TOLERANCE))  # float64 differences are real
