"""The README's entry point, run as a user runs it: a subprocess on the week-4 config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("model", ["models.ManualModule", "models.NativeModule"])
def test_week04_config_fits_and_tests_for_one_epoch(tmp_path, model: str) -> None:
    result = run_cli(
        "fit",
        "--config",
        str(ROOT / "configs/week04.yaml"),
        "--model",
        model,
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--data.train_path",
        str(tmp_path / "absent.csv"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "week-4 data: synthetic fallback" in out
    assert "Test metrics for" in out and "Confusion matrix" in out and "Predicted class counts" in out
    run_dir = tmp_path / "runs" / "week04" / "version_0"
    final = json.loads((run_dir / "weights_final.json").read_text())
    assert final["model"] == model.split(".")[1]
    assert (run_dir / "weights_initial.json").exists()
    ckpt = next((run_dir / "checkpoints").glob("*.ckpt"))
    tested = run_cli(
        "test",
        "--config",
        str(ROOT / "configs/week04.yaml"),
        "--model",
        model,
        "--ckpt_path",
        str(ckpt),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--data.train_path",
        str(tmp_path / "absent.csv"),
    )
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert "f1" in tested.stdout + tested.stderr
