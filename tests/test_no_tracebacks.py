"""Mistakes that used to end in a traceback or leave a run folder behind: a delimiter of two characters, compare
with a missing CSV, Ctrl-C before training starts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from commands.ctrl_c import MESSAGE, one_line_on_ctrl_c
from datamodules import CSVDataModule, Week04DataModule
from datamodules.csv_table import DataError
from tests.conftest import ROOT
from tests.test_cli_errors import fails_with_one_message, flower_args
from tests.test_where_results_go import restore_ctrl_c
from train import cli_main


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_a_delimiter_of_two_characters_is_one_message(tmp_path, capsys, command: str) -> None:
    line = fails_with_one_message(flower_args(tmp_path, "--data.init_args.delimiter=;;", command=command), capsys)
    assert line.startswith("error: data.delimiter is ';;', but \"delimiter\" must be a 1-character string. Use one")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(DataError, match="data.delimiter is ''"):
        Week04DataModule(delimiter="")
    CSVDataModule("t.csv", delimiter="\t")  # one character: taken, nothing read yet


def test_compare_with_a_missing_csv_leaves_no_folder(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.csv"
    line = fails_with_one_message(
        flower_args(tmp_path, f"--data.init_args.train_path={missing}", command="compare"), capsys
    )
    assert line == f"error: {missing}: file not found. Check the path in the config or on the command line."
    assert not (tmp_path / "runs").exists()  # no flower_compare/version_0/manual


def test_ctrl_c_while_a_command_starts_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C while the data are read leaves cli_main as a KeyboardInterrupt (not a user error, not a bug
    report), which the hook train.py installs first thing prints as one line; other errors keep their traceback."""

    def interrupted(self: CSVDataModule) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(CSVDataModule, "fit_state", interrupted)
    with pytest.raises(KeyboardInterrupt) as stopped:
        cli_main(flower_args(tmp_path))
    assert sys.excepthook is one_line_on_ctrl_c  # installed by importing train
    capsys.readouterr()
    one_line_on_ctrl_c(stopped.type, stopped.value, stopped.tb)
    assert capsys.readouterr().err.strip() == MESSAGE
    assert not (tmp_path / "runs").exists()
    try:
        raise ValueError("a bug")
    except ValueError as error:
        one_line_on_ctrl_c(ValueError, error, error.__traceback__)
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_during_start_up_prints_one_line_and_exits(tmp_path) -> None:
    """SIGINT a second after start, while train.py is still importing torch and Lightning."""
    command = [sys.executable, str(ROOT / "train.py"), "fit", "--config", str(ROOT / "configs/week04.yaml")]
    command.append(f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_ctrl_c
    )
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == MESSAGE
    assert process.returncode == -signal.SIGINT  # Python exits as killed by SIGINT, as a shell expects of Ctrl-C
    assert not (tmp_path / "runs").exists()
