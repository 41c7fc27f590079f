"""A sweep's report scales with its grid: the figure fits the grid (a line, a heat map while it is readable, else a
distribution), the terminal shows the last snapshot (for a large grid, a summary and the best members), TensorBoard
gets the best members' runs past MEMBER_RUNS; and the memory plan refuses a stack that would not fit, naming a
max_members that does."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from commands.sweep import run_sweep, sweep_main
from commands.sweep_figures import grid_figures
from commands.sweep_memory import epochs_per_block, plan_stack
from commands.sweep_results import TABLE_MEMBERS, TOP_K, readable_results, write_results
from commands.sweep_tensorboard import MEMBER_RUNS
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]
LR = "model.init_args.optimizer.init_args.lr"
HIDDEN = "model.init_args.net.hidden_sizes"
ACTIVATION = "model.init_args.net.activation"


def rows_of(grid: dict[str, list], f1, epochs: tuple[int, ...] = (1,)) -> list[dict]:
    """Results rows of every combination of ``grid`` at each epoch, test F1 = ``f1(values, epoch)``."""
    keys = list(grid)
    combos = np.array(np.meshgrid(*[np.arange(len(v)) for v in grid.values()], indexing="ij")).reshape(len(keys), -1)
    rows = []
    for epoch in epochs:
        for m, index in enumerate(combos.T):
            values = {k: grid[k][i] for k, i in zip(keys, index)}
            score = float(f1(values, epoch))
            rows.append(
                {"member": f"m{m}", "values": values, "epoch": epoch, "train_loss": 1 - score, "test_loss": 1 - score}
                | {"test_accuracy": score, "test_precision": score, "test_recall": score, "test_f1": score}
                | {"collapsed": False, "diverged": False}
            )
    return rows


def test_one_axis_of_many_values_is_a_line_log_scaled_when_it_spans_decades() -> None:
    lrs = list(np.geomspace(1e-4, 1.0, 300))
    rows = rows_of({LR: lrs, "seed": [0, 1]}, lambda v, e: 0.5 + 0.1 * v["seed"] + 0.01 * e, epochs=(10, 20))
    (figure,) = grid_figures(rows)
    ax = figure.figure.axes[0]
    assert figure.name == "test_f1_by_lr" and ax.get_xscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["epoch 10", "epoch 20"]
    means = ax.get_lines()[1].get_ydata()
    np.testing.assert_allclose(means, 0.5 + 0.05 + 0.2)  # the mean over the two seeds at epoch 20
    assert len(ax.collections) == 2  # a band per snapshot: the seeds' spread
    (linear,) = grid_figures(rows_of({LR: list(np.linspace(0.01, 0.2, 300))}, lambda v, e: v[LR]))
    assert linear.figure.axes[0].get_xscale() == "linear" and not linear.figure.axes[0].collections


def test_a_small_two_axis_grid_is_a_heat_map_coloured_over_its_own_cells_with_readable_text() -> None:
    grid = {LR: [0.01, 0.05, 0.1, 0.2], HIDDEN: [[3, 3], [5, 5], [10, 10]], "seed": [0, 1]}
    rows = rows_of(grid, lambda v, e: 0.97 + 0.01 * v[LR] + 0.001 * v[HIDDEN][0] + 0.0001 * v["seed"], (30, 60))
    figures = grid_figures(rows)
    assert [f.name for f in figures] == ["test_f1_heat_map_epoch30", "test_f1_heat_map_epoch60"]
    ax = figures[-1].figure.axes[0]
    low, high = ax.images[0].get_clim()
    assert low == pytest.approx(0.97 + 0.0001 + 0.003 + 0.00005)  # lr 0.01, 3x3, the mean over the seeds
    assert high == pytest.approx(0.97 + 0.002 + 0.01 + 0.00005)  # lr 0.2, 10x10
    colours = {text.get_text(): text.get_color() for text in ax.texts}
    assert len(ax.texts) == 12
    assert colours[f"{high:.3g}"] == "black" and colours[f"{low:.3g}"] == "white"  # on yellow, on dark purple


def test_two_axes_too_long_for_a_heat_map_are_lines_and_more_a_distribution() -> None:
    lrs = list(np.linspace(0.01, 0.2, 100))
    rows = rows_of({LR: lrs, ACTIVATION: ["relu", "sigmoid"]}, lambda v, e: v[LR] + (v[ACTIVATION] == "relu"))
    (figure,) = grid_figures(rows)
    assert figure.name == "test_f1_by_lr_per_activation"
    assert [line.get_label() for line in figure.figure.axes[0].get_lines()] == ["activation relu", "activation sigmoid"]
    widths = [[w, w] for w in range(1, 31)]
    (summary,) = grid_figures(rows_of({LR: lrs, HIDDEN: widths}, lambda v, e: v[LR]))
    assert summary.name == "test_f1_distribution" and summary.tag == "sweep/distribution"
    (seeds,) = grid_figures(rows_of({"seed": list(range(20))}, lambda v, e: v["seed"] / 20))
    assert seeds.name == "test_f1_distribution"
    assert grid_figures(rows_of({LR: [0.1]}, lambda v, e: 0.5)) == []  # one member: nothing to compare


def test_the_terminal_shows_the_last_snapshot_and_a_large_grid_its_best_members(tmp_path) -> None:
    small = rows_of({LR: [0.1, 0.2, 0.3]}, lambda v, e: v[LR] * e, epochs=(1, 2))
    text = write_results(tmp_path, small)
    assert len([line for line in text.splitlines() if re.match(r"m\d+ ", line)]) == 3
    assert "Epoch 2 shown; the 3 rows of epochs [1]: results.csv" in text
    count = TABLE_MEMBERS + 10
    large = rows_of({LR: list(np.linspace(0.01, 1.0, count))}, lambda v, e: v[LR] * e / 2, epochs=(1, 2))
    text = write_results(tmp_path, large)
    listed = [line.split()[0] for line in text.splitlines() if re.match(r"m\d+ ", line)]
    assert listed == [f"m{m}" for m in range(count - 1, count - 1 - TOP_K, -1)]  # best first
    assert f"{count} members at epoch 2; test macro F1: best 1 (m{count - 1})" in text
    assert f"{2 * count - TOP_K} more rows ({count - TOP_K} members, snapshots [1, 2]): results.csv" in text
    with open(tmp_path / "results.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 2 * count
    assert readable_results(large, [LR], markdown=True) + "\n" == (tmp_path / "results.md").read_text()


def week04_args(*extra: str) -> list[str]:
    return ["--config", str(ROOT / "configs/week04.yaml"), "--trainer.enable_progress_bar=false", *extra]


def lr_grid(tmp_path: Path, count: int) -> str:
    path = tmp_path / "lrs.yaml"
    values = ", ".join(f"{v:.6g}" for v in np.linspace(0.01, 0.2, count))
    path.write_text(f"grid:\n  {LR}: [{values}]\n")
    return str(path)


def test_past_member_runs_tensorboard_gets_the_best_members_and_the_grid_as_a_whole(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    members = MEMBER_RUNS + 20
    code = sweep_main([*week04_args("--trainer.max_epochs=2"), "--sweep", lr_grid(tmp_path, members)], make_cli)
    out = capsys.readouterr().out
    assert code == 0
    run_dir = Path("runs/lrs_sweep/version_0")
    assert f"the {TOP_K} best members' runs under members/" in out and str(run_dir / "test_f1_by_lr.png") in out
    assert len(list((run_dir / "members").iterdir())) == TOP_K
    best = re.findall(r"^(lr[\d.]+) ", out, re.M)[:TOP_K]
    assert sorted(p.name for p in (run_dir / "members").iterdir()) == sorted(best)
    grid = EventAccumulator(str(run_dir), size_guidance={"tensors": 0}).Reload()
    assert "grid/test_f1" in grid.Tags()["histograms"] and "sweep/test_f1_by_value" in grid.Tags()["images"]
    assert [e.step for e in grid.Scalars("grid/test_f1_q050")] == [2]
    assert "grid/best_members/text_summary" in grid.Tags()["tensors"]


def test_a_10000_value_axis_is_parsed_without_checking_each_value_against_the_whole_list(tmp_path) -> None:
    start = time.perf_counter()
    args = [*week04_args(), f"--sweep={lr_grid(tmp_path, 10_000)}"]
    cli = make_cli(args, run=False, instantiate=False, command="sweep")
    assert len(cli.config.sweep.grid[LR]) == 10_000
    assert time.perf_counter() - start < 20  # list[Any] made the parser copy the list per value: minutes


def test_a_stack_that_would_not_fit_is_refused_in_one_message_naming_a_max_members_that_fits(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("commands.sweep.available_bytes", lambda: 24 * 2**20)
    grid = lr_grid(tmp_path, 2000)
    args = [*week04_args("--trainer.max_epochs=1"), "--sweep", grid]
    assert sweep_main(args, make_cli) == 2
    error = capsys.readouterr().err.strip()
    fits = int(re.search(r"set --sweep.max_members (\d+) \(or max_members: \1 in the sweep file\)", error)[1])
    assert error.startswith("error: stack 1/1 (2000 members) would need about ") and "\n" not in error
    assert "but 24 MB is available (MemAvailable, /proc/meminfo)" in error
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert " ".join(error.removeprefix("error: ").split()) in readme  # the README's example is this run's message
    assert not (tmp_path / "runs").exists()  # refused before anything is written
    assert 1 < fits < 2000
    assert sweep_main([*args, f"--sweep.max_members={fits + 1}"], make_cli) == 2
    result = run_sweep(make_cli, [*args, f"--sweep.max_members={fits}"])
    assert [len(stack) for stack, _ in result.stacks] == [fits] * (2000 // fits) + [2000 % fits] * bool(2000 % fits)


def test_a_block_counts_what_its_updates_return_not_only_its_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_sweep(make_cli, week04_args("--trainer.max_epochs=3"), lr_grid(tmp_path, 4))
    stack = result.stacks[0][0]
    rows_only = 400 * (2 * 8 + 8 + 8)  # x, y and the row index of one week-4 epoch, shared by the members
    plan = plan_stack(stack, 3, 1, result.stacks[0][1].dtype, checkpoints=True)
    assert plan.block > 3 * rows_only  # each update's loss and logits too, per member
    monkeypatch.setattr("commands.sweep_memory.BLOCK_BYTES", 2 * rows_only)
    assert epochs_per_block(stack, 3, result.stacks[0][1].dtype) == 0  # two epochs' rows fit; not what they return
