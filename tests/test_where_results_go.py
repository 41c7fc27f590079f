"""Where a command writes: evaluations of a checkpoint go into its own run, fast_dev_run writes nothing, and
Ctrl-C during fit exits soon, naming a checkpoint that loads."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

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


def restore_ctrl_c() -> None:
    """A process started with SIGINT ignored (a CI job in the background) passes that on, and Python then raises
    no KeyboardInterrupt: the child gets the default handling back, as in a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_during_fit_exits_within_10_s_and_names_a_checkpoint_that_loads(tmp_path) -> None:
    runs, output = tmp_path / "runs", tmp_path / "output.txt"
    options = [
        "--config", str(WEEK04), "--trainer.enable_progress_bar=false", "--weights_export.print_final=false",
        f"--trainer.logger.init_args.save_dir={runs}",
    ]  # fmt: skip
    command = [sys.executable, str(ROOT / "train.py"), "fit", *options, "--trainer.max_epochs=100000"]
    with output.open("w") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, preexec_fn=restore_ctrl_c,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 180  # start-up on a busy machine
            while not list(runs.glob("week04/version_0/checkpoints/*.ckpt")) and time.monotonic() < deadline:
                assert process.poll() is None, output.read_text()[-3000:]
                time.sleep(0.1)
            time.sleep(1.0)  # well inside training: epochs, checkpoints and event writes under way
            process.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            process.wait(timeout=120)  # a hang detector; the bound is asserted below
            seconds = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                process.kill()
    text = output.read_text()
    assert seconds < 10, f"exit took {seconds:.1f} s"
    assert process.returncode == 1, text[-3000:]  # Lightning's status after a graceful shutdown
    found = re.search(r"Interrupted\. Last checkpoint: (\S+\.ckpt)", text)
    assert found, text[-3000:]
    ckpt = found.group(1)
    assert f"Resume with the same command plus --ckpt_path {ckpt}" in text
    assert torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    cli_main(["test", *options, f"--ckpt_path={ckpt}"])  # and train.py test takes it
