"""The README's entry point, run as a user runs it: a subprocess on the week-4 config."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # every test runs train.py in a subprocess


def run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True)


def week04_args(tmp_path, *extra: str) -> list[str]:
    """The week-4 config, quiet, logging under tmp_path, on the synthetic fallback data."""
    return [
        "--config",
        str(ROOT / "configs/week04.yaml"),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        *extra,
    ]


@pytest.mark.parametrize("model", ["models.ManualModule", "models.NativeModule"])
def test_week04_config_fits_and_tests_for_one_epoch(tmp_path, model: str) -> None:
    result = run_cli("fit", *week04_args(tmp_path, "--model", model, "--trainer.max_epochs", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "week-4 data: synthetic fallback" in out
    assert "Test metrics for" in out and "Confusion matrix" in out and "Predicted class counts" in out
    assert "💡 Tip" not in out  # Lightning's litlogger/litmodels adverts are filtered out by train.py
    run_dir = tmp_path / "runs" / "week04" / "version_0"
    final = json.loads((run_dir / "weights_final.json").read_text())
    assert final["model"] == model.split(".")[1]
    assert (run_dir / "weights_initial.json").exists()
    ckpt = next((run_dir / "checkpoints").glob("*.ckpt"))
    tested = run_cli("test", *week04_args(tmp_path, "--model", model, "--ckpt_path", str(ckpt)))
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert "f1" in tested.stdout + tested.stderr


def test_cli_tests_a_checkpoint_saved_by_a_plain_trainer(tmp_path) -> None:
    """Modules built in Python record their class, so the CLI can rebuild them from a checkpoint."""
    from datamodules.week04 import Week04DataModule
    from models import MLPSpec, NativeModule
    from tests.conftest import quiet_trainer

    spec = MLPSpec(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=50, limit_val_batches=0)
    trainer.fit(NativeModule(spec), datamodule=Week04DataModule())
    trainer.save_checkpoint(tmp_path / "plain.ckpt")
    tested = run_cli(
        "test", "--config", str(ROOT / "configs/week04.yaml"), "--ckpt_path", str(tmp_path / "plain.ckpt"),
        "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
    )  # fmt: skip
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert "Test metrics for native (autograd)" in tested.stdout + tested.stderr
