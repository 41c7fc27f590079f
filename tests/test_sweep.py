"""train.py sweep: every member of a stacked grid ends where the single `fit` of its config ends
(1e-12, float64), across learning rates, padded hidden widths, seeds, optimisers and several stacks;
bad sweep files are refused by key before anything trains; a diverging member is frozen alone."""

from __future__ import annotations

import csv
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from commands.sweep import best_member, export_member, run_sweep, sweep_main
from commands.sweep_grid import SweepError, representatives
from models.sweep_module import SweepModule
from tests.conftest import MessagesOf
from train import cli_main, make_cli

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]
QUIET += ["--trainer.enable_progress_bar=false", "--test_after_fit=false", "--weights_export.print_final=false"]


def week04(tmp_path: Path, *extra: str) -> list[str]:
    """The week-4 config on its synthetic data (no data paths given), 3 epochs."""
    return ["--config", str(ROOT / "configs/week04.yaml"), "--trainer.max_epochs=3", *extra]


def sweep_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return str(path)


def single_fit_weights(args: list[str], values: dict[str, object], root: Path) -> list[np.ndarray]:
    overrides = [f"--trainer.default_root_dir={root}"]
    for key, value in values.items():
        keys = ["model.init_args.net.init_seed", "data.init_args.seed"] if key == "seed" else [key]
        overrides += [f"--{k}={value}" for k in keys]
    cli = make_cli([*args, *overrides, *QUIET], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return [layer.weight.detach().numpy() for layer in cli.model.net.layers]


def assert_members_equal_single_runs(result, args: list[str], names: list[str]) -> None:
    members = {m.name: m for stack, _ in result.stacks for m in stack}
    for name in names:
        single = single_fit_weights(args, members[name].values, result.run_dir / "single" / name)
        stacked = result.final_weights(name)
        for a, b in zip(stacked, single):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)


def test_sgd_grid_with_padded_widths_equals_single_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.init_args.lr: [0.05, 0.2]
  model.init_args.net.hidden_sizes: [[3, 3], [5, 4]]
  seed: [0, 1]
snapshots: [1, 2]
"""
    args = week04(tmp_path)
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert len(result.stacks) == 1 and len(result.stacks[0][0]) == 8  # one stack, widths padded to 5, 4
    assert sorted({r["epoch"] for r in result.rows}) == [1, 2, 3]  # the snapshots and the last epoch
    assert len(result.rows) == 8 * 3
    members = result.stacks[0][0]
    # the data are read once for every seed (a seed orders the rows, never makes them), each member keeps its seed
    assert all(m.data.x_train is members[0].data.x_train for m in members)
    assert {m.values["seed"]: m.data.seed for m in members} == {0: 0, 1: 1}
    assert_members_equal_single_runs(result, args, ["lr0.05-h3x3-seed1", "lr0.2-h5x4-seed0", "lr0.2-h3x3-seed0"])


@pytest.mark.parametrize(
    "optimizer",
    [
        ["--model.init_args.optimizer.init_args.momentum=0.9", "--model.init_args.optimizer.init_args.nesterov=true"],
        ["--model.init_args.optimizer=torch.optim.Adam", "--model.init_args.optimizer.init_args.lr=0.01"],
    ],
    ids=["momentum", "adam"],
)
def test_momentum_and_adam_members_equal_single_runs(tmp_path, monkeypatch, optimizer: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.init_args.lr: [0.01, 0.03]
  model.init_args.net.init_std: [0.2, 0.5]
"""
    args = week04(tmp_path, *optimizer, "--model.init_args.rows_per_update=8", "--model.init_args.net.bias=true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert_members_equal_single_runs(result, args, ["lr0.01-init_std0.2", "lr0.03-init_std0.5"])


def test_the_autograd_twin_trains_every_member_to_the_same_weights(tmp_path, monkeypatch) -> None:
    """torch.func (vmap of grad through NativeMLP) against the hand-derived stack, padded widths included."""
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.init_args.lr: [0.05, 0.2]
  model.init_args.net.hidden_sizes: [[3, 3], [5, 4]]
"""
    args = week04(tmp_path, "--model.init_args.rows_per_update=10", "--model.init_args.net.bias=true")
    hand = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    twin = run_sweep(make_cli, args, sweep_file(tmp_path, grid + "gradients: autograd\n"))
    assert not twin.stacks[0][1].hand_derived
    for name in ("lr0.05-h3x3", "lr0.2-h5x4"):
        for a, b in zip(hand.final_weights(name), twin.final_weights(name)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9, err_msg=name)
        assert not np.allclose(hand.final_weights(name)[0], 0)


def test_a_grid_that_cannot_share_a_stack_runs_as_several(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.net.activation: [sigmoid, tanh]
  model.init_args.net.hidden_sizes: [[3], [3, 3]]
"""
    args = week04(tmp_path)
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert len(result.stacks) == 4  # two activations x two depths
    assert_members_equal_single_runs(result, args, ["activationtanh-h3"])


def test_init_scheme_and_scale_axes_equal_single_runs(tmp_path, monkeypatch) -> None:
    """Week 7's axes: the initialisation rule and its scale, each member drawing what its single run draws."""
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.net.init: [normal, xavier_uniform, he_normal, torch_default]
  model.init_args.net.init_std: [0.05, 1.0]
snapshots: [2]
"""
    args = week04(tmp_path, "--model.init_args.net.bias=true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert len(result.stacks) == 1 and len(result.stacks[0][0]) == 8
    names = ["initnormal-init_std1", "initxavier_uniform-init_std0.05", "inithe_normal-init_std1"]
    assert_members_equal_single_runs(result, args, [*names, "inittorch_default-init_std0.05"])


def test_an_optimizer_class_axis_runs_one_stack_per_class(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.class_path: [torch.optim.SGD, torch.optim.Adam]
  model.init_args.optimizer.init_args.lr: [0.01, 0.05]
"""
    args = week04(
        tmp_path, "--model.init_args.optimizer.init_args.momentum=0.5", "--model.init_args.rows_per_update=20"
    )
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert len(result.stacks) == 2  # SGD (with the config's momentum) and Adam (which takes no momentum)
    assert_members_equal_single_runs(result, args, ["SGD-lr0.05", "Adam-lr0.01"])


def test_a_diverging_member_is_frozen_and_flagged_alone(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    grid = """
grid:
  model.init_args.optimizer.init_args.lr: [0.1, 1.0e+6]
"""
    args = week04(tmp_path, "--model.init_args.net.activation=identity")  # no saturation: lr 1e6 overflows
    code = sweep_main([*args, "--sweep", sweep_file(tmp_path, grid)], make_cli)
    out = capsys.readouterr().out
    assert code == 0
    assert "1 member(s) diverged and were frozen: lr1e+06" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("lr")]
    assert rows[0][-2:] == ["no", "no"] and rows[1][-2:] == ["yes", "yes"]
    run_dir = tmp_path / "runs/grid_sweep/version_0"
    assert (run_dir / "results.csv").is_file() and (run_dir / "test_f1_by_lr.png").is_file()
    # TensorBoard: one run per member, with its loss curve and an HParams session
    for member in ("lr0.1", "lr1e+06"):
        events = EventAccumulator(str(run_dir / "members" / member)).Reload()
        assert "_hparams_/session_start_info" in events.Tags()["tensors"]
        assert [e.step for e in events.Scalars("train/loss_epoch")] == [1, 2, 3]
        assert [e.step for e in events.Scalars("final/test_f1")] == [3]
    assert "sweep/test_f1_by_value" in EventAccumulator(str(run_dir)).Reload().Tags()["images"]


@pytest.mark.parametrize(
    "text,message",
    [
        ("grid:\n  model.init_args.net.widths: [1, 2]\n", "unknown grid key 'model.init_args.net.widths'"),
        ("grid:\n  model.init_args.optimizer.init_args.lr: []\n", "is an empty list"),
        ("grid:\n  model.init_args.optimizer.init_args.lr: [fast]\n", "cannot take 'fast': expected float$"),
        ("grid:\n  model.init_args.optimizer.init_args.lr: [0.1, 0.2, fast, 0.3]\n", "cannot take 'fast'"),
        ("grid:\n  data.init_args.batch_size: [8, x]\n", "'data.init_args.batch_size' cannot take 'x': expected int$"),
        (
            "grid:\n  model.init_args.optimizer.class_path: [torch.optim.SGD, torch.optim.Adamm]\n",
            "cannot take 'torch.optim.Adamm': module 'torch.optim' has no attribute 'Adamm'$",
        ),
        (
            "grid:\n  model.init_args.net.activation: [sigmoid, tanh, sigmod]\n",
            "cannot take 'sigmod': expected one of 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'identity'$",
        ),
        ("grid:\n  trainer.max_epochs: [1, 2]\n", "'trainer.max_epochs' is shared by every member"),
        (
            "grid:\n  model.init_args.net.hidden_sizes: [[4], [0]]\n",
            r"the member with model.init_args.net.hidden_sizes=\[0\]: every layer size must be >= 1",
        ),
        ("snapshots: [1]\n", "needs a 'grid:' mapping"),
        ("- 1\n- 2\n", "needs a 'grid:' mapping"),
        ("grid: [\n", r"grid.yaml, line 2, column 1: not valid YAML \(expected the node content"),
        ("grid:\n  seed: [0, 1]\nsnaphots: [1]\n", r"unknown key\(s\) \['snaphots'\]; a sweep file holds"),
        ("grid:\n  seed: [0, x]\n", "grid key 'seed' takes whole numbers >= 0"),
        ("grid:\n  seed: [0, 1]\nmax_members: 0\n", "sweep.max_members: Not of type PositiveInt: 0"),
    ],
)
def test_bad_sweep_files_are_refused_by_key(tmp_path, monkeypatch, capsys, text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["sweep", *week04(tmp_path), f"--sweep={sweep_file(tmp_path, text)}"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.search(message, errors[0]), errors
    assert not (tmp_path / "runs").exists()  # nothing written


@pytest.mark.parametrize(
    "override,message",
    [
        ("--data.init_args.target_scale=0", "error: data.target_scale is 0"),
        ("--model.init_args.rows_per_update=0", "error: the member with model.init_args.optimizer.init_args.lr=0.1: "),
    ],
)
def test_a_config_value_a_class_refuses_is_one_message(tmp_path, monkeypatch, capsys, override, message) -> None:
    """The sweep's CLI only parses: each member's net and data are built by the sweep, with the same checks."""
    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.1, 0.5]\n")
    config = str(Path(__file__).resolve().parents[1] / "configs/lab04.yaml")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["sweep", "--config", config, "--trainer.max_epochs=2", override, "--sweep", grid])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "runs").exists()


def test_an_axis_is_validated_by_its_distinct_values_and_number_range() -> None:
    assert representatives([0.3, 0.1, 0.2, 0.1]) == [0.1, 0.3]
    assert representatives([[3, 3], [5, 5], [3, 3], 2, 7, 4, 0.5]) == [[3, 3], [5, 5], 2, 7, 0.5]
    assert representatives(["relu", "tanh", "relu", True]) == ["relu", "tanh", True]


def test_the_best_member_exports_as_a_checkpoint_that_test_accepts(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path, "--model.init_args.net.hidden_sizes=[4,3]")
    grid = "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.2]\n  seed: [0, 1]\n"
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    best = best_member(result)
    final = {row["member"]: row for row in result.rows}
    assert final[best]["test_f1"] == max(row["test_f1"] for row in final.values())
    path = export_member(make_cli, args, result, "best")
    stored = torch.load(path, weights_only=True)["state_dict"]
    for k, w in enumerate(result.final_weights(best)):
        np.testing.assert_array_equal(stored[f"net.layers.{k}.weight"].numpy(), w)
    # an ordinary checkpoint: `train.py test --ckpt_path` takes it
    cli_main(["test", *args, "--trainer.logger=false", "--trainer.callbacks=[]", f"--ckpt_path={path}"])
    with pytest.raises(SweepError, match="no such member; use best or one of: lr0.01-seed0"):
        export_member(make_cli, args, result, "lr9")


class StopAfterFirstBlock(pl.Callback):
    """An interruption: the fit ends after its first training step (block of epochs)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.should_stop = True


def test_a_resumed_sweep_equals_the_uninterrupted_one(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path, "--trainer.max_epochs=4", "--model.init_args.optimizer.init_args.momentum=0.9")
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.1]\nsnapshots: [2]\n")
    whole = run_sweep(make_cli, args, grid)
    cut = run_sweep(make_cli, args, grid, callbacks=[StopAfterFirstBlock()])
    assert [r["epoch"] for r in cut.rows] == [2, 2]  # interrupted after the first block (epochs 1-2)
    resumed = run_sweep(make_cli, args, grid, resume=str(cut.run_dir))
    assert resumed.run_dir == cut.run_dir
    for name in ("lr0.01", "lr0.1"):
        for a, b in zip(whole.final_weights(name), resumed.final_weights(name)):
            np.testing.assert_array_equal(a, b)
    assert resumed.rows == whole.rows
    with pytest.raises(SweepError, match="not a sweep's run directory"):
        run_sweep(make_cli, args, grid, resume=str(tmp_path))
    other = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.2]\n")
    with pytest.raises(SweepError, match=r"holds the members lr0.01, lr0.1, but this sweep file and config make"):
        run_sweep(make_cli, args, other, resume=str(cut.run_dir))


class CtrlCInBlock(pl.Callback):
    """Ctrl-C as a user presses it: while the given block (Lightning epoch) trains."""

    def __init__(self, block: int) -> None:
        self.block = block

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.block:
            raise KeyboardInterrupt


def test_ctrl_c_in_the_middle_of_a_stack_resumes_from_its_last_block(tmp_path, monkeypatch) -> None:
    """Every block is checkpointed, not only snapshots: a stack cut in its third block goes on from the second."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("commands.sweep_stack.epochs_per_block", lambda stack, epochs, dtype: min(epochs, 2))
    args = week04(tmp_path, "--trainer.max_epochs=8", "--model.init_args.optimizer=torch.optim.Adam")
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.05]\n")
    whole = run_sweep(make_cli, args, grid)
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores SIGINT from the first Ctrl-C on
    printed = MessagesOf("backprop")
    with printed, pytest.raises(SystemExit):
        run_sweep(make_cli, args, grid, callbacks=[CtrlCInBlock(2)])
    signal.signal(signal.SIGINT, handler)
    run_dir = Path("runs/grid_sweep/version_1")
    assert f"Resume with:\npython train.py sweep --config {args[1]}" in printed.text
    assert f"--sweep.resume={run_dir}" in printed.text
    saved = torch.load(run_dir / "stack_0/checkpoints/last.ckpt", weights_only=True)
    assert len(saved["sweep_state"]["train_losses"]) == 4  # blocks 1 and 2: epochs 1-4, no snapshot among them
    resumed = run_sweep(make_cli, args, grid, resume=str(run_dir))
    for name in ("lr0.01", "lr0.05"):
        for a, b in zip(whole.final_weights(name), resumed.final_weights(name)):
            np.testing.assert_array_equal(a, b)
    assert resumed.rows == whole.rows


@pytest.mark.ddp
def test_two_gloo_processes_give_the_one_process_results(tmp_path, monkeypatch) -> None:
    """Members sharded over 2 CPU ranks (2 and 1 of 3), gathered on rank 0: the same table as one process."""
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.1, 0.2]\nsnapshots: [1]\n")
    args = week04(tmp_path, "--trainer.max_epochs=2")
    (tmp_path / "one").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    assert sweep_main([*args, "--sweep", grid], make_cli) == 0
    (tmp_path / "two").mkdir()
    ddp = ["--trainer", str(ROOT / "configs/trainer/ddp_cpu.yaml")]
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "sweep", *args, *ddp, "--sweep", grid],
        cwd=tmp_path / "two",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one = (tmp_path / "one/runs/grid_sweep/version_0/results.csv").read_text()
    two = (tmp_path / "two/runs/grid_sweep/version_0/results.csv").read_text()
    assert one == two and one.count("\n") == 1 + 3 * 2  # header, 3 members x 2 snapshots


@pytest.mark.ddp
@pytest.mark.slow
def test_a_sweep_cut_and_resumed_on_two_gloo_ranks_equals_the_whole_one_process_sweep(tmp_path, monkeypatch) -> None:
    """Rank 0 checkpoints the gathered stack; on resume every rank reads its own members' weights and state."""
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path, "--trainer.max_epochs=4", "--model.init_args.optimizer.init_args.momentum=0.9")
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.01, 0.1, 0.2]\nsnapshots: [2]\n")
    whole = run_sweep(make_cli, args, grid, save_dir=str(tmp_path / "one"))
    script = [sys.executable, str(ROOT / "tests/ddp_sweep_run.py"), grid]
    ddp = [*args, "--trainer", str(ROOT / "configs/trainer/ddp_cpu.yaml"), "--trainer.enable_progress_bar=false"]
    ddp += [f"--trainer.logger.init_args.save_dir={tmp_path / 'two'}"]
    cut = subprocess.run([*script, "--cut", "--", *ddp], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert cut.returncode == 0, cut.stderr[-3000:]
    run_dir = cut.stdout.split("RUN_DIR=")[1].split()[0]
    resumed = subprocess.run(
        [*script, "--resume", run_dir, "--", *ddp], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    two = torch.load(Path(run_dir) / "stack_0/checkpoints/last.ckpt", weights_only=True)
    # both blocks done: epochs 1-2 before the cut, 3-4 after it
    assert [row["epoch"] for row in two["sweep_state"]["results"]] == [2, 2, 2, 4, 4, 4]
    for k, weight in enumerate(whole.stacks[0][1].weights):
        np.testing.assert_array_equal(two["state_dict"][f"weights.{k}"].numpy(), weight.detach().numpy())


def test_stacked_chunks_cut_each_batch_and_group_each_epoch() -> None:
    from models.engine import epoch_chunks
    from models.sweep_module import MemberData, stack_loader

    member = MemberData(torch.zeros(10, 2), torch.zeros(10), torch.zeros(1, 2), torch.zeros(1), seed=0)
    loader = stack_loader([member], batch_size=6, shuffle=False, whole_epochs=True)
    loader.set_epochs(range(0, 2))
    assert loader.batch_rows() == [6, 4] and len(loader) == 1
    ((x, _),) = list(loader)
    assert x.shape == (20, 2)  # both epochs whole in one batch, shared by the members (no member dimension)
    assert epoch_chunks(loader.batch_rows(), 2, 4) == [
        [slice(0, 4), slice(4, 6), slice(6, 10)],
        [slice(10, 14), slice(14, 16), slice(16, 20)],
    ]
    assert epoch_chunks(loader.batch_rows(), 2, None) == [[slice(0, 6), slice(6, 10)], [slice(10, 16), slice(16, 20)]]


def test_the_sweep_logs_where_the_config_logs_and_titles_its_bar_with_the_stack(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    grid = "grid:\n  model.init_args.net.activation: [sigmoid, tanh]\n"
    save_dir = f"--trainer.logger.init_args.save_dir={tmp_path / 'elsewhere'}"
    args = week04(tmp_path, save_dir, "--trainer.enable_progress_bar=true")
    result = run_sweep(make_cli, args, sweep_file(tmp_path, grid))
    assert result.run_dir == tmp_path / "elsewhere" / "grid_sweep" / "version_0"
    assert not (tmp_path / "runs").exists()
    bars = capsys.readouterr().out  # Lightning's tqdm bars write to stdout
    assert "stack 1/2: 1 member, 2-3-3-2 sigmoid softmax_ce: epochs 1-3 of 3: 100%" in bars
    assert "stack 2/2: 1 member, 2-3-3-2 tanh softmax_ce: epochs 1-3 of 3: 100%" in bars and "v_num" not in bars


def test_results_csv_quotes_list_values(tmp_path) -> None:
    from commands.sweep_results import write_results

    row = {"member": "h3x3", "values": {"model.init_args.net.hidden_sizes": [3, 3]}, "epoch": 1, "train_loss": 0.5}
    row |= {"test_loss": 0.4, "test_accuracy": 1.0, "test_precision": 1.0, "test_recall": 1.0, "test_f1": 1.0}
    row |= {"collapsed": False, "diverged": False}
    write_results(tmp_path, [row])
    with open(tmp_path / "results.csv", newline="") as f:
        header, values = list(csv.reader(f))
    assert len(header) == len(values) and values[header.index("hidden_sizes")] == "[3, 3]"


def test_the_tensor_path_a_gpu_takes_equals_the_numpy_path(tmp_path, monkeypatch) -> None:
    """On a CUDA device the stack trains on torch tensors (the CPU takes NumPy views, cheaper per call):
    the same layers and optimiser code, stood in for here by tensors on the CPU."""
    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.2]\n  seed: [0, 1]\n")
    args = week04(tmp_path, "--model.init_args.optimizer.init_args.momentum=0.9")
    numpy_path = run_sweep(make_cli, args, grid)
    monkeypatch.setattr(SweepModule, "arrays", lambda self, t: t.detach())
    tensor_path = run_sweep(make_cli, args, grid)
    for name in ("lr0.05-seed0", "lr0.2-seed1"):
        for a, b in zip(numpy_path.final_weights(name), tensor_path.final_weights(name)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_stack_on_the_gpu_matches_the_cpu(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.05, 0.2]\n")
    cpu = run_sweep(make_cli, week04(tmp_path), grid)
    gpu = run_sweep(make_cli, week04(tmp_path, "--trainer.accelerator=gpu", "--trainer.devices=1"), grid)
    for name in ("lr0.05", "lr0.2"):
        for a, b in zip(cpu.final_weights(name), gpu.final_weights(name)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_members_with_biases_give_back_their_biases(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = week04(tmp_path, "--model.init_args.net.bias=true")
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.net.hidden_sizes: [[3, 3], [5, 4]]\n")
    result = run_sweep(make_cli, args, grid)
    cli = make_cli([*args, "--model.init_args.net.hidden_sizes=[3, 3]", *QUIET], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    single = [layer.bias.detach().numpy() for layer in cli.model.net.layers]
    stacked = result.final_biases("h3x3")
    assert [b.shape for b in stacked] == [(3,), (3,), (2,)]
    assert [b.shape for b in result.final_biases("h5x4")] == [(5,), (4,), (2,)]
    for a, b in zip(stacked, single):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_lightning_s_block_count_stop_line_is_not_shown(tmp_path, monkeypatch) -> None:
    """A stack's Trainer counts blocks: "`max_epochs=1` reached" beside --trainer.max_epochs 3 would mislead."""
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    recorder = Recorder()
    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = lightning_log.level  # experiments.run_all, run in-process by other tests, quiets Lightning's info
    lightning_log.addHandler(recorder)
    lightning_log.setLevel(logging.INFO)
    try:
        run_sweep(make_cli, week04(tmp_path), sweep_file(tmp_path, "grid:\n  seed: [0, 1]\n"))
    finally:
        lightning_log.removeHandler(recorder)
        lightning_log.setLevel(level)
    assert any(message.startswith("GPU available") for message in seen)  # the logger does reach the recorder
    assert not any(message.startswith("`Trainer.fit` stopped") for message in seen)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "--trainer.callbacks+=lightning.pytorch.callbacks.Timer",
            "trainer.callbacks holds lightning.pytorch.callbacks.Timer",
        ),
        ("--trainer.gradient_clip_val=1.0", "cannot honour trainer.gradient_clip_val=1.0"),
        ("--trainer.limit_train_batches=0.5", "cannot honour trainer.limit_train_batches=0.5"),
        ("--trainer.logger=lightning.pytorch.loggers.CSVLogger", "trainer.logger=lightning.pytorch.loggers.CSVLogger"),
    ],
)
def test_trainer_settings_a_sweep_cannot_honour_are_refused_by_name(tmp_path, monkeypatch, capsys, override, message):
    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.1, 0.2]\n")
    code = sweep_main([*week04(tmp_path), override, "--sweep", grid], make_cli)
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "runs").exists()


def test_the_sweep_honours_the_trainer_and_checks_every_member_s_gradients(tmp_path, monkeypatch) -> None:
    """deterministic and the progress-bar switch reach each stack's Trainer; the config's GradientCheck runs per
    member against autograd."""
    monkeypatch.chdir(tmp_path)
    grid = sweep_file(tmp_path, "grid:\n  model.init_args.optimizer.init_args.lr: [0.1, 0.2]\n")
    printed = MessagesOf("backprop")
    args = week04(tmp_path, "--trainer.deterministic=true", "--trainer.enable_progress_bar=false")
    with printed:
        result = run_sweep(make_cli, args, grid)
    module = result.stacks[0][1]
    assert module.trainer.progress_bar_callback is None
    assert torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    assert re.search(r"Gradient check, 2 members: worst relative error .* [0-9.]+e-1[0-9] \(pass", printed.text)
