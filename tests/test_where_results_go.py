"""Where a command writes: evaluations of a checkpoint go into its own run, and fast_dev_run writes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.test_cli_errors import flower_args
from train import cli_main

WEEK04 = ROOT / "configs/week04.yaml"


def test_evaluating_a_checkpoint_writes_into_its_own_run(tmp_path, recwarn) -> None:
    cli_main(flower_args(tmp_path, "--trainer.max_epochs=2", "--model.init_args.epochs_per_step=1"))
    run = tmp_path / "runs" / "flower" / "version_0"
    (ckpt,) = (run / "checkpoints").glob("*.ckpt")
    recwarn.clear()
    for command in ("validate", "test", "predict"):
        cli_main(flower_args(tmp_path, f"--ckpt_path={ckpt}", command=command))
        assert list((run / command / "version_0").glob("events.out.tfevents.*")), command
    assert sorted(p.name for p in (tmp_path / "runs" / "flower").iterdir()) == ["version_0"]  # no new version_1
    assert (run / "predictions.csv").is_file()
    messages = [str(w.message) for w in recwarn]
    assert not [m for m in messages if "dirpath has changed" in m or "callbacks used to create the checkpoint" in m]
    cli_main(flower_args(tmp_path, f"--ckpt_path={ckpt}", command="test"))  # a second test: the next version
    assert (run / "test" / "version_1").is_dir()


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_fast_dev_run_writes_nothing(tmp_path, monkeypatch, command: str) -> None:
    """Run from an empty folder, as from the repository root, with the shipped config (save_dir: runs)."""
    monkeypatch.chdir(tmp_path)
    cli_main([command, "--config", str(WEEK04), "--trainer.fast_dev_run=true", "--trainer.enable_progress_bar=false"])
    assert list(tmp_path.iterdir()) == []
