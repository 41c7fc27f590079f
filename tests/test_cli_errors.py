"""A mistake the user can fix ends in one message on stderr, exit status 2 and nothing written; run in-process
through train.cli_main, as `python train.py ...` runs it."""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from typing import Literal

import pytest
import torch

from callbacks.checkpoints import CheckpointError, check_checkpoint
from commands.errors import TRACEBACK_ENV, remove_if_empty
from tests.conftest import ROOT, MessagesOf
from train import cli_main

FLOWER = ROOT / "configs/flower.yaml"


def flower_args(tmp_path, *extra: str, command: str = "fit") -> list[str]:
    return [
        command,
        "--config",
        str(FLOWER),
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--weights_export.print_final=false",
        *extra,
    ]


def fails_with_one_message(args: list[str], capsys) -> str:
    """Runs the command, expects exit status 2, and returns the one error line (no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def write(path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.mark.parametrize(
    ("text", "encoding", "expected"),
    [
        (
            "flower_id;sun;water;outcome\n0;0.1;0.2;Thrived\n",
            "utf-8",
            r"looks ';'-separated\. Set data\.delimiter: ';'",
        ),
        ("flower_id\tsun\twater\toutcome\n0\t0.1\t0.2\tThrived\n", "utf-8", r"looks tab \('\\t'\)-separated"),
        ("flower_id,sun,water,outcome\n0,0.1,0.2,Thrived\n1,0.3,0.4,Ça va\n", "latin-1", r"line 3: byte 0xc7 is not"),
        (
            'flower_id,sun,water,outcome\n0,0.1,0.2,Thrived\n1,"0.3,0.4,Thrived\n2,0.5,0.6,Thrived\n',
            "utf-8",
            r"line 3: a quote \(\"\) opened on this line is never closed",
        ),
    ],
)
def test_bad_csv_through_the_cli_is_one_message_and_writes_nothing(tmp_path, capsys, text, encoding, expected) -> None:
    path = write(tmp_path / "flowers.csv", text, encoding)
    line = fails_with_one_message(flower_args(tmp_path, f"--data.init_args.train_path={path}"), capsys)
    assert str(tmp_path / "flowers.csv") in line
    assert re.search(expected, line), line
    assert not (tmp_path / "runs").exists()  # validated before the run directory was created


def test_the_encoding_setting_reads_a_latin1_file(tmp_path) -> None:
    from datamodules import CSVDataModule

    path = write(tmp_path / "t.csv", "é_sun,water,label\n0.1,0.2,ja\n0.3,0.4,nein\n", "latin-1")
    dm = CSVDataModule(path, encoding="latin-1")
    dm.setup("fit")
    assert dm.feature_names == ["é_sun", "water"] and dm.tensors("train")[0].shape == (2, 2)


def test_a_named_week04_file_that_does_not_exist_is_an_error(tmp_path, capsys) -> None:
    args = [
        "fit", "--config", str(ROOT / "configs/week04.yaml"), f"--data.test_path={tmp_path / 'test.csv'}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", f"--data.train_path={tmp_path / 'train.csv'}",
    ]  # fmt: skip
    line = fails_with_one_message(args, capsys)
    assert f"{tmp_path / 'train.csv'}: file not found" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--model.init_args.net.dropout=1.5", "error: dropout is a drop probability in [0, 1), got 1.5"),
        ("--data.init_args.val_fraction=2", "error: data.val_fraction must be in [0, 1), got 2.0"),
        ("--data.init_args.target_scale=0", "error: data.target_scale is 0"),
        (
            "--model.init_args.net.init=uniform --model.init_args.net.input_size=3",
            "error: CSVDataModule: model.init_args.net.input_size is 3 but the data has 2 features",
        ),
    ],
)
def test_a_bad_config_value_is_its_own_message(tmp_path, capsys, override: str, expected: str) -> None:
    assert fails_with_one_message(flower_args(tmp_path, *override.split()), capsys).startswith(expected)
    assert not (tmp_path / "runs").exists()


def test_a_trainer_setting_the_machine_cannot_honour_is_one_message(tmp_path, capsys) -> None:
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU; the message is for one without")
    line = fails_with_one_message(flower_args(tmp_path, "--trainer.accelerator=gpu"), capsys)
    assert line.startswith("error: No supported gpu backend found! Check the trainer settings")
    assert "--trainer configs/trainer/cpu.yaml" in line
    assert not (tmp_path / "runs").exists()


def test_a_config_that_is_not_valid_yaml_is_one_line_with_its_position(tmp_path, capsys) -> None:
    broken = write(tmp_path / "broken.yaml", "trainer:\n  max_epochs: [\n")
    line = fails_with_one_message(["fit", "--config", broken], capsys)
    assert line.startswith("error: Problems parsing config: while parsing a flow node did not find expected node")
    assert "in the config, line 3, column 1. Every option" in line


def test_option_abbreviations_are_refused(tmp_path, capsys) -> None:
    line = fails_with_one_message(flower_args(tmp_path, "--trainer.max_epoch=3"), capsys)
    assert line.startswith("error: unrecognized arguments: --trainer.max_epoch=3. Every option: python train.py")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("--model.init_args.optimizer.init_args.lr=fast", "error: model: lr = fast: expected float."),
        (
            "--model.init_args.net.activation=sigmod",
            "error: model: net.activation = sigmod: expected one of 'sigmoid', 'tanh', 'relu', 'leaky_relu', "
            "'identity'.",
        ),
        ("--trainer.max_epochs=x", "error: trainer.max_epochs = x: expected int."),
        ("--model=models.Nope", "error: model = models.Nope: module 'models' has no attribute 'Nope'."),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_not_the_usage(tmp_path, capsys, override: str, expected: str) -> None:
    """jsonargparse would print the usage (~50 lines) and a report of every union member it tried."""
    line = fails_with_one_message(flower_args(tmp_path, override), capsys)
    assert line == f"{expected} Every option: python train.py <command> --help"
    assert not (tmp_path / "runs").exists()


def test_the_traceback_is_shown_on_request(tmp_path, monkeypatch) -> None:
    from datamodules.csv_table import DataError

    monkeypatch.setenv(TRACEBACK_ENV, "1")
    with pytest.raises(DataError, match="file not found"):
        cli_main(flower_args(tmp_path, f"--data.init_args.train_path={tmp_path / 'absent.csv'}"))


class NotWeights:
    """An object torch's weights-only loader refuses to unpickle."""


@pytest.fixture
def bad_checkpoints(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint at all")
    torch.save({"state_dict": {"w": torch.ones(100)}, "epoch": 1}, tmp_path / "good.ckpt")
    whole = (tmp_path / "good.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    with zipfile.ZipFile(tmp_path / "other.zip.ckpt", "w") as archive:  # a zip, but not torch.save's
        archive.writestr("archive/data.pkl", pickle.dumps({"hyper_parameters": {}}))
    torch.save({"hyper_parameters": NotWeights()}, tmp_path / "pickled.ckpt")  # torch's format, unsafe content
    return tmp_path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing", "no such file"),
        ("empty", "the file is empty"),
        ("garbage", "not a PyTorch checkpoint, or cut short"),
        ("truncated", "not a PyTorch checkpoint, or cut short"),
        ("other.zip", "a zip archive, but not one torch.save wrote"),
    ],
)
def test_unusable_checkpoints_are_named_before_anything_runs(bad_checkpoints, capsys, name: str, expected: str) -> None:
    path = bad_checkpoints / f"{name}.ckpt"
    with pytest.raises(CheckpointError, match=expected):
        check_checkpoint(path)
    line = fails_with_one_message(flower_args(bad_checkpoints, f"--ckpt_path={path}", command="test"), capsys)
    assert f"--ckpt_path {path}: {expected}" in line
    assert not (bad_checkpoints / "runs").exists()


def test_an_unsafe_checkpoint_is_refused_without_unsafe_advice(bad_checkpoints, capsys) -> None:
    path = bad_checkpoints / "pickled.ckpt"
    check_checkpoint(path)  # a sound zip: only the loader can tell
    line = fails_with_one_message(flower_args(bad_checkpoints, f"--ckpt_path={path}", command="test"), capsys)
    assert f"--ckpt_path {path}: the checkpoint could not be loaded" in line
    assert "not a checkpoint written by this project's train.py" in line
    assert "weights_only" not in line


def test_an_empty_run_directory_is_removed_and_a_useful_one_kept(tmp_path) -> None:
    empty = tmp_path / "version_0"
    empty.mkdir()
    (empty / "hparams.yaml").write_text("{}")
    (empty / "weights_initial.json").write_text("{}")  # written at fit start, before anything was trained
    (empty / "events.out.tfevents.1.host").write_bytes(b"\0")
    assert remove_if_empty(empty) and not empty.exists()
    kept = tmp_path / "version_1"
    (kept / "checkpoints").mkdir(parents=True)
    (kept / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert not remove_if_empty(kept) and kept.exists()


class Collect(logging.Handler):
    """Keeps every message logged through Lightning's rank-zero logger (its own handler holds a stream that
    pytest's capture fixtures do not see)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.slow
def test_max_epochs_0_warns_and_collapse_advice_names_this_config(tmp_path) -> None:
    printed = MessagesOf("backprop")
    with (
        printed,
        pytest.warns(UserWarning, match=r"nothing was trained: trainer\.max_epochs is 0 .*test metrics below"),
    ):
        cli_main(flower_args(tmp_path, "--trainer.max_epochs=0"))
    collapsed = [m for m in printed.text.split("Test metrics for") if "every test prediction fell in class" in m]
    assert len(collapsed) == 1  # the untrained net predicts one class
    assert f"Try, in {FLOWER} or as overrides" in collapsed[0] and "--trainer.max_epochs, now 0" in collapsed[0]
    assert "60-100" not in collapsed[0]  # week 4's numbers are gone


@pytest.mark.slow
def test_a_run_that_fails_after_creating_its_directory_removes_it(tmp_path, capsys) -> None:
    cli_main(flower_args(tmp_path, "--trainer.max_epochs=1", "--test_after_fit=false"))
    ckpt = next((tmp_path / "runs" / "flower" / "version_0" / "checkpoints").glob("*.ckpt"))
    capsys.readouterr()
    args = flower_args(tmp_path, f"--ckpt_path={ckpt}", "--data.init_args.task=regression", command="predict")
    with pytest.raises(SystemExit):
        cli_main(args)
    err = capsys.readouterr().err
    assert "error: the checkpoint's data was a classification task but data.task is 'regression'" in err
    run = tmp_path / "runs" / "flower" / "version_0"
    assert f"removed the empty run directory {run / 'predict'}" in err  # predict logs into the checkpoint's run
    assert sorted(p.name for p in (tmp_path / "runs" / "flower").iterdir()) == ["version_0"]  # no version_1
    assert not (run / "predict").exists() and (run / "checkpoints").is_dir()


def test_the_help_lists_compare_and_sweep(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "fit" in out and "compare" in out and "sweep" in out and "--sweep configs/sweeps/" in out


def test_the_jsonargparse_wording_that_errors_condenses_is_still_there() -> None:
    """commands/errors.py reads jsonargparse's reports by their wording (pinned below 4.54 in pyproject.toml): when
    an upgrade rewords them, this fails before users see raw multi-line reports."""
    import argparse

    from jsonargparse import ArgumentParser

    from commands.errors import parser_complaint

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--lr", type=float | None)
    parser.add_argument("--activation", type=Literal["sigmoid", "tanh"])
    with pytest.raises(argparse.ArgumentError) as lr:
        parser.parse_args(["--lr", "fast"])
    with pytest.raises(argparse.ArgumentError) as activation:
        parser.parse_args(["--activation", "sigmod"])
    assert 'Parser key "lr"' in str(lr.value) and "Expected a <class 'float'>" in str(lr.value)
    assert parser_complaint(str(lr.value)) == "lr = fast: expected float"
    assert parser_complaint(str(activation.value)) == "activation = sigmod: expected one of 'sigmoid', 'tanh'"
