"""A checkpoint is checked against the config before use: a bare state_dict, missing or extra keys, other shapes,
non-finite weights or another kind of data each end in one message (exit 2) with nothing written."""

from __future__ import annotations

import re

import pytest
import torch

from callbacks.checkpoint_fit import non_finite, weights_mismatch, weights_of
from callbacks.checkpoints import CheckpointError
from tests.conftest import ROOT
from tests.test_cli_errors import fails_with_one_message, flower_args
from train import cli_main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch flower run: its checkpoint and the runs folder it lives in."""
    root = tmp_path_factory.mktemp("trained")
    cli_main(flower_args(root, "--trainer.max_epochs=1", "--test_after_fit=false"))
    (checkpoint,) = (root / "runs" / "flower" / "version_0" / "checkpoints").glob("*.ckpt")
    return checkpoint


def altered(trained, tmp_path, change) -> str:
    checkpoint = torch.load(trained, weights_only=True)
    path = tmp_path / "altered.ckpt"
    torch.save(change(checkpoint), path)
    return str(path)


def without(key: str):
    def change(checkpoint: dict) -> dict:
        del checkpoint["state_dict"][key]
        return checkpoint

    return change


def replaced(key: str, value: torch.Tensor):
    def change(checkpoint: dict) -> dict:
        checkpoint["state_dict"][key] = value
        return checkpoint

    return change


def with_nan(checkpoint: dict) -> dict:
    checkpoint["state_dict"]["net.layers.0.weight"][0, 1] = float("nan")
    return checkpoint


CASES = {
    "bare state_dict": (lambda c: c["state_dict"], r"a bare state_dict \(weights only, as torch.save"),
    "missing key": (without("net.layers.1.bias"), r"does not fit the net \(2-2-1 sigmoid sigmoid_bce\): it lacks net"),
    "extra key": (replaced("net.layers.2.weight", torch.ones(1, 1)), "holds net.layers.2.weight, which the net has no"),
    "wrong shape": (replaced("net.layers.0.weight", torch.ones(3, 2)), "layers.0.weight is 3x2 but the net's is 2x2"),
    "NaN weights": (with_nan, r"weights are not finite \(NaN or inf in net.layers.0.weight: 1 of 4 entries\): the run"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["fit", "test"])
def test_a_checkpoint_that_does_not_fit_is_one_message(trained, tmp_path, capsys, case: str, command: str) -> None:
    change, expected = CASES[case]
    path = altered(trained, tmp_path, change)
    line = fails_with_one_message(
        flower_args(tmp_path, f"--ckpt_path={path}", "--trainer.max_epochs=2", command=command), capsys
    )
    assert line.startswith(f"error: --ckpt_path {path}: "), line
    assert re.search(expected, line), line
    assert not (tmp_path / "runs").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["altered.ckpt"]


def test_a_checkpoint_of_other_data_is_refused_naming_its_config(trained, tmp_path, capsys) -> None:
    """Week 4's DataModule would not restore the CSV's fitted columns and normalisation: the test would score
    untransformed blobs."""
    args = ["test", "--config", str(ROOT / "configs/week04.yaml"), f"--ckpt_path={trained}"]
    line = fails_with_one_message([*args, f"--trainer.logger.init_args.save_dir={tmp_path}"], capsys)
    assert "it was trained on datamodules.CSVDataModule data, whose fitted transform it carries, but the" in line
    assert line.endswith(f"Use --config {trained.parent.parent / 'config.yaml'}.")
    assert not (trained.parent.parent / "test").exists()


def test_the_checks_name_what_differs() -> None:
    net = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    assert weights_mismatch(dict(net), net) is None
    assert weights_mismatch({"w": torch.zeros(2, 3)}, net) == "it lacks b, which the net has"
    assert weights_mismatch({**net, "b": torch.zeros(())}, net) == "its b is a scalar but the net's is 2"
    assert non_finite({"w": torch.tensor([1.0, float("inf"), float("nan")])}) == "w: 2 of 3 entries"
    assert non_finite({"steps": torch.tensor([3])}) is None  # integers are never NaN
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        weights_of([1, 2], "x.ckpt")
