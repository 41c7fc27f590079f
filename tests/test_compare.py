"""``train.py compare``: both modules from one config, weights equal to 1e-9 in float64, table written."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from commands.compare import (
    FLOAT32_TOLERANCE,
    FLOAT64_TOLERANCE,
    Comparison,
    compare_main,
    max_difference,
    max_relative_difference,
    verdict,
)
from tests.conftest import ROOT
from tests.notebook_reference import notebook_data, week04_torch_run
from train import cli_main, make_cli


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
    assert out.count("pred 0") == 2 and "W3 (3, 2):" not in out  # final weights go to files (--verbose prints them)
    assert out.count("weights_final.json") == 2 and len(out.splitlines()) <= 40
    assert "PASS: largest |w_manual - w_autograd| = " in out and ", relative to max(|w|, 1) = " in out
    assert "(tolerance 1e-09 on the relative difference, float64)" in out

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
    def native_gets_another_learning_rate(args: list[str], **kwargs: object):
        extra = ["--model.init_args.optimizer.init_args.lr", "0.2"] if "models.NativeModule" in args else []
        return make_cli([*args, *extra], **kwargs)

    assert compare_main(compare_args(tmp_path, 1), native_gets_another_learning_rate) == 1
    assert "FAIL: largest |w_manual - w_autograd|" in capsys.readouterr().out


def test_float32_fail_points_to_a_float64_rerun(tmp_path) -> None:
    def comparison(tolerance: float) -> Comparison:
        return Comparison({}, 3e-3, 3e-3, tolerance, False, True, True, tmp_path)

    assert "rerun with --trainer.precision 64-true" in verdict(comparison(FLOAT32_TOLERANCE))
    assert "rerun" not in verdict(comparison(FLOAT64_TOLERANCE))  # float64 differences are real


def test_the_relative_difference_judges_large_weights_by_their_rounding(tmp_path) -> None:
    """Two runs that grew to 1e112 and differ in their 15th digit agree; |w| <= 1 keeps the absolute difference."""
    manual = {"w": torch.tensor([1e112, 0.5], dtype=torch.float64)}
    native = {"w": torch.tensor([1e112 * (1 + 1e-15), 0.5 + 1e-12], dtype=torch.float64)}
    assert max_difference(manual, native) > 1e96
    assert max_relative_difference(manual, native) == pytest.approx(1e-12, rel=1e-3)
    line = verdict(Comparison({}, 1.43e96, 1e-12, FLOAT64_TOLERANCE, True, True, True, tmp_path))
    assert line.startswith("PASS: largest |w_manual - w_autograd| = 1.430e+96, relative to max(|w|, 1) = 1.000e-12")


def diverging_args(tmp_path) -> list[str]:
    """The flower config with nothing to saturate and a learning rate that overflows in the first epoch."""
    return [
        "--config",
        str(ROOT / "configs/flower.yaml"),
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--weights_export.print_final=false",
        "--trainer.callbacks=[]",
        "--model.init_args.net.activation=identity",
        "--model.init_args.optimizer.init_args.lr=1e6",
        "--trainer.max_epochs=5",
        "--model.init_args.epochs_per_step=1",
    ]


def test_compare_reports_both_runs_diverged_at_the_same_update(tmp_path, capsys) -> None:
    assert compare_main(diverging_args(tmp_path), make_cli) == 2  # a setting to change, like other usage errors
    out = capsys.readouterr().out
    assert "both runs diverged, at the same update, as two agreeing gradient computations do" in out
    where = re.search(r"manual \(hand-derived\) at update (\d+) \(epoch 1\); native \(autograd\) at update (\d+)", out)
    assert where and where.group(1) == where.group(2), out
    assert out.count("diverged: the loss became non-finite") == 2  # each run's own message, with its advice
    assert "FAIL" not in out and "PASS" not in out


def test_compare_fails_loudly_when_only_one_run_diverges(tmp_path, capsys) -> None:
    def native_gets_a_small_learning_rate(args: list[str], **kwargs: object):
        extra = ["--model.init_args.optimizer.init_args.lr=0.01"] if "models.NativeModule" in args else []
        return make_cli([*args, *extra], **kwargs)

    assert compare_main(diverging_args(tmp_path), native_gets_a_small_learning_rate) == 1
    out = capsys.readouterr().out
    assert "FAIL: only one run diverged: manual (hand-derived) at update" in out
    assert "native (autograd) trained to the end with finite weights" in out


def test_twin_start_torch_starts_the_twin_as_the_notebooks_torch_run(tmp_path, capsys) -> None:
    """The twin's weights start as torch.manual_seed(0) + nn.Linear's defaults and, after an epoch of
    torch.randperm-ordered single-row SGD, equal an independent replay of the notebook's torch loop;
    the hand-derived run keeps the config's start; no weight verdict, exit 0."""
    args = [*compare_args(tmp_path, 1), "--trainer.callbacks=[]", "--weights_export.print_final=false"]
    assert compare_main([*args, "--twin_start", "torch"], make_cli) == 0
    out = capsys.readouterr().out
    assert "autograd twin: PyTorch's own start (--twin_start torch): torch.manual_seed(0)" in out
    assert "identical initial weights: no, identical data order (epoch 1): no (different by design)" in out
    assert "No weight-equality verdict (--twin_start torch)" in out and "PASS" not in out and "FAIL" not in out
    assert out.count("pred 0") == 2 and "precision" in out  # both runs' confusion matrices and P/R/F1

    x_train, y_train, _, _ = notebook_data(0)
    torch_start, torch_end = week04_torch_run(x_train, y_train, seed=0, epochs=1)
    run = tmp_path / "runs" / "week04_compare" / "version_0"

    def weights(label: str, stage: str) -> list[np.ndarray]:
        saved = json.loads((run / label / f"weights_{stage}.json").read_text())["weights"]
        return [np.array(saved[f"W{k}"]).T for k in (1, 2, 3)]  # torch layout (out, in), as the replay's

    for ours, reference in zip(weights("native", "initial"), torch_start):
        np.testing.assert_array_equal(ours, reference)
    for ours, reference in zip(weights("native", "final"), torch_end):
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-12)
    config_net = make_cli(["--config", str(ROOT / "configs/week04.yaml")], run=False).model.net.double()
    config_net.reset_parameters()  # the config's N(0, 0.2) draw, in float64 as the run makes it
    for ours, layer in zip(weights("manual", "initial"), config_net.layers):
        np.testing.assert_array_equal(ours, layer.weight.detach().numpy())
    assert np.abs(weights("manual", "final")[0] - weights("native", "final")[0]).max() > 1e-3


def test_compare_lists_its_own_options_and_refuses_an_unknown_twin_start_in_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as help_exit:
        cli_main(["compare", "--help"])
    assert help_exit.value.code == 0
    shown = capsys.readouterr().out
    assert "--twin_start {same,torch}" in shown and "--config CONFIG" in shown and "--verbose" in shown
    with pytest.raises(SystemExit) as error_exit:
        cli_main(["compare", "--config", str(ROOT / "configs/week04.yaml"), "--twin_start", "pytorch"])
    assert error_exit.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert "twin_start = pytorch: expected one of 'same', 'torch'" in line
