"""The experiment runner: Lab 4's repeated-rows fast path is exact, and a quick run writes RESULTS-style tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from callbacks.tensorboard_dashboard import TensorBoardDashboard
from callbacks.tensorboard_logger import EpochTensorBoardLogger
from commands.sweep_memory import copies_per_row
from experiments import lab04, mnist_week, run_all, week07
from experiments.probe import EpochProbe, split_metrics
from experiments.report import Report
from experiments.runner import CONFIGS, QUIET, run
from models.lightning_modules import MLPModule, NativeModule
from models.spec import MLPSpec
from tests.conftest import ROOT, needs_debian_fashion
from train import make_cli


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_experiment_config_builds(config: str) -> None:
    cli = make_cli(["--config", str(CONFIGS / config), *QUIET], run=False)
    assert isinstance(cli.model, MLPModule)
    assert cli.trainer.max_epochs >= 1


def sweep_file_content(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def test_lab04_sweep_files_hold_the_notebook_lists_over_seeds() -> None:
    lrs, hidden = sweep_file_content(str(lab04.LR_SWEEP))["grid"], sweep_file_content(str(lab04.HIDDEN_SWEEP))["grid"]
    assert lrs == {lab04.LR_AXIS: list(lab04.NOTEBOOK_LR), "seed": lab04.SEEDS}
    assert hidden == {lab04.HIDDEN_AXIS: [[h] for h in lab04.NOTEBOOK_HIDDEN], "seed": lab04.SEEDS}
    assert len(lab04.SEEDS) >= 10
    assert list(lab04.NOTEBOOK_LOSSES) == [1, *range(100, 1001, 100)]  # every loss the lab printed


@pytest.mark.parametrize("sweep_file, axis", [("LR_SWEEP", "LR_AXIS"), ("HIDDEN_SWEEP", "HIDDEN_AXIS")])
def test_lab04_sweeps_equal_the_single_fits(tmp_path, sweep_file: str, axis: str) -> None:
    """Members of the lr and hidden-size sweeps (two of their seeds here) end where their own `train.py fit`
    does, to 1e-12, and their per-epoch curves, read as the lab's loss, are the single fit's."""
    axis = getattr(lab04, axis)
    grid = sweep_file_content(str(getattr(lab04, sweep_file)))["grid"]
    two_seeds = lab04.write_grid({**grid, "seed": [0, 3]}, tmp_path / "two_seeds.yaml")
    result, _ = lab04.lab_sweep(two_seeds, 20, tmp_path)
    losses = lab04.final_losses(result, axis)
    assert len(losses) == len(grid[axis]) > 1 and all(set(per_seed) == {0, 3} for per_seed in losses.values())
    first = lab04.axis_value(grid[axis][0])
    checked = [(n, v) for n, v, _ in result.member_curves() if v["seed"] == 0 or lab04.axis_value(v[axis]) == first]
    for name, values in checked:
        seed = values["seed"]
        seeds = [f"--model.init_args.net.init_seed={seed}", f"--data.init_args.seed={seed}"]
        single = run(
            "lab04",
            [f"--{axis}={json.dumps(values[axis])}", *seeds, "--trainer.max_epochs=20"],
            EpochProbe(every=1, at_start=True),
        )
        for layer, w in zip(single.module.net.layers, result.final_weights(name)):
            torch.testing.assert_close(layer.weight.detach(), torch.from_numpy(w), rtol=0, atol=1e-12)
        key = lab04.axis_value(values[axis])
        assert losses[key][seed] == pytest.approx(single.last["train/mse"], rel=0, abs=1e-12)
        before_each_update = [r["train/mse"] for r in single.records[:-1]]  # the lab prints the loss before update n
        curve = lab04.loss_curves(result, axis, key)[seed]
        np.testing.assert_allclose(curve, before_each_update, rtol=1e-12, atol=0)


def test_fashion_mnist_sweep_files_hold_the_notebook_grids() -> None:
    optimizers = sweep_file_content(str(mnist_week.FASHION_OPTIMIZER_SWEEP))
    activations = sweep_file_content(str(mnist_week.FASHION_ACTIVATION_SWEEP))
    assert optimizers["grid"] == {
        mnist_week.OPTIMIZER_AXIS: ["torch.optim.SGD", "torch.optim.Adam"],
        mnist_week.LR_AXIS: [0.001, 0.01, 0.1],
    }
    assert activations["grid"] == {mnist_week.ACTIVATION_AXIS: ["relu", "sigmoid"]}
    assert optimizers["snapshots"] == activations["snapshots"] == [1, 2, 3, 4, 5]  # the notebook's 5 epochs


@pytest.mark.slow
@needs_debian_fashion
def test_quick_fashion_grids_share_batches_and_report_every_member(tmp_path) -> None:
    report = Report(tmp_path)
    mnist_week.fashion_grids(report, quick=True, work_dir=tmp_path)
    (section,) = report.sections
    figures = r"\| 0\.\d{4} \| 0\.\d{4} \| [\d.]+ \| (?:no|.+) \|$"  # --quick: one epoch's accuracy, F1, loss
    optimizers = re.findall(rf"^\| (SGD|Adam) \| ([\d.]+) {figures}", section, re.M)
    assert optimizers == [(o, lr) for o in ("SGD", "Adam") for lr in ("0.001", "0.01", "0.1")]
    assert re.findall(r"^\| (relu|sigmoid) \| 0\.\d{4} \| 0\.\d{4} \|", section, re.M) == ["relu", "sigmoid"]
    assert (tmp_path / "results" / "mnist_week_fashion_optimizers.png").stat().st_size > 1000
    result, _ = mnist_week.fashion_sweep(mnist_week.FASHION_OPTIMIZER_SWEEP, quick=True, work_dir=tmp_path)
    assert [len(stack) for stack, _ in result.stacks] == [3, 3]
    assert all(copies_per_row(stack) == 1 for stack, _ in result.stacks)  # one copy of each batch per stack


def test_weights_only_file_reloads_into_a_new_module(tmp_path) -> None:
    result = run("lab04", ["--trainer.max_epochs=5"])
    fresh = lab04.save_and_reload(result, tmp_path / "w.pt")
    assert lab04.predict_points(fresh, result.datamodule) == lab04.predict_points(result.module, result.datamodule)
    scaled, points = lab04.predict_points(fresh, result.datamodule)
    assert 0 < scaled < 1 and points == scaled * 100


@pytest.mark.slow
def test_quick_run_writes_tables_with_numbers(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # run_all moves to the project root; monkeypatch moves back afterwards
    path = run_all.main(["--quick", "--only", "lab04", "week04", "--out", str(tmp_path), "--work-dir", str(tmp_path)])
    text = path.read_text()
    assert "Machine: " in text and "Time taken: " in text
    for heading in ("## Lab 4", "### Grid", "## Week 4", "### Try-it-now grid"):
        assert heading in text
    loss_table = text.split("## Lab 4")[1].split("### Learning rates")[0]
    spread = r"\d\.\d{6} \(\d\.\d{6}-\d\.\d{6}\)"  # mean (min-max) over the seeds
    loss_rows = re.findall(rf"^\| (\d+) \| \d\.\d{{6}} \| {spread} \| \d\.\d{{6}} \| (?:yes|no) \|$", loss_table, re.M)
    assert loss_rows == ["1", "100"]  # --quick: 100 updates, so the lab's first two printed losses
    seeds = len(lab04.SEEDS)
    row = rf"\| {spread} \| \d\.\d{{6}} \| \d\.\d{{6}} \| (?:yes|no) \| (\d+) of {seeds} \|$"
    lr_table = text.split("### Learning rates")[1].split("### Hidden sizes")[0]
    lr_wins = re.findall(rf"^\| [\d.]+ {row}", lr_table, re.M)
    assert len(lr_wins) == 4 and sum(map(int, lr_wins)) == seeds  # each seed has one best rate
    assert "lies inside the seed spread" in lr_table or "lies outside what these" in lr_table
    hidden_table = text.split("### Hidden sizes")[1].split("### Grid")[0]
    hidden_wins = re.findall(rf"^\| \d+ {row}", hidden_table, re.M)
    assert len(hidden_wins) == 5 and sum(map(int, hidden_wins)) == seeds
    grid = text.split("### Grid")[1].split("Why the numbers differ")[0]
    numeric_rows = [line for line in grid.splitlines() if re.match(r"\| \d+ \| [\d.]+ \| \d\.\d{6} \|", line)]
    assert len(numeric_rows) == 9  # hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}
    assert (tmp_path / "results" / "week04_grid_f1.png").stat().st_size > 1000
    assert (tmp_path / "lab04_weights.pt").is_file()
    side = text.split("### From scratch beside PyTorch")[1].split("### Try-it-now grid")[0]
    models = ("from scratch (hand-derived), the notebook's start", "PyTorch (autograd), the same start and order",
              "PyTorch (autograd), PyTorch's own start")  # fmt: skip
    for model in models:
        assert re.search(rf"^\| {re.escape(model)} \| 0\.\d{{6}} \| 0\.\d{{6}} \| 0\.\d{{6}} \|", side, re.M)
        counts = re.search(rf"^\| {re.escape(model)} \| predicted count \| (\d+) \| (\d+) \|$", side, re.M)
        assert counts and int(counts[1]) + int(counts[2]) == 200  # every test row predicted once
    assert "No weight" not in side and side.count("W3 (3, 2):") == 2  # scratch's and the torch twin's weights
    assert (tmp_path / "results" / "week04_losses.png").stat().st_size > 1000


def test_week07_init_sweep_names_the_notebook_stds_and_scales_snapshots_for_quick(tmp_path) -> None:
    full = sweep_file_content(str(week07.init_sweep_file(quick=False, work_dir=tmp_path)))
    assert [week07.init_name(std) for std in full["grid"][week07.SCALE_AXIS]] == list(week07.INITS)
    assert full["grid"]["seed"] == [0, 1, 2]
    quick_path = week07.init_sweep_file(quick=True, work_dir=tmp_path)
    quick = sweep_file_content(str(quick_path))
    assert quick["grid"] == full["grid"] and quick["snapshots"] == [e // 10 for e in full["snapshots"]]
    assert Path(quick_path).parent == tmp_path


@pytest.mark.slow
def test_quick_week07_reads_the_init_sweep(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = run_all.main(["--quick", "--only", "week07", "--out", str(tmp_path), "--work-dir", str(tmp_path)])
    table = path.read_text().split("### Initialisation")[1].split("### Exercises")[0]
    rows = re.findall(r"^\| (small|xavier|he) \| [\d.]+ \| (\d+) \| ([\d.]+) / ([\d.]+) / ([\d.]+) \|", table, re.M)
    assert [(name, int(epoch)) for name, epoch, *_ in rows] == [
        (name, epoch) for name in week07.INITS for epoch in (10, 50)
    ]
    assert (tmp_path / "results" / "week07_init_losses.png").stat().st_size > 1000


NEXT_IDEAS = sorted(p.name for p in (CONFIGS / "next_ideas").glob("*.yaml"))
ONE_BLOCK = ["--trainer.max_epochs=1", "--trainer.max_steps=1"]  # one training step: 40 updates of 128 rows


@pytest.mark.parametrize("layer", NEXT_IDEAS)
def test_next_idea_configs_layer_on_the_mlp_config(layer: str) -> None:
    cli = make_cli(
        ["--config", str(CONFIGS / "fashion_mnist_mlp.yaml"), "--config", str(CONFIGS / "next_ideas" / layer), *QUIET],
        run=False,
    )
    spec, augment = cli.model.spec, cli.datamodule.hparams.augment
    changed = (spec.dropout, bool(spec.conv_channels), cli.model.lr_scheduler_factory is not None)
    assert (*changed, spec.batch_norm, augment) == {
        "dropout.yaml": (0.2, False, False, False, False),
        "lenet.yaml": (0.0, True, False, False, False),
        "one_cycle.yaml": (0.0, False, True, False, False),
        "batch_norm.yaml": (0.0, False, False, True, False),
        "augment.yaml": (0.0, False, False, False, True),
    }[layer]
    assert cli.model.optimizer_factory is not None and spec.hidden_sizes  # the rest comes from the MLP config
    if layer == "lenet.yaml":
        assert spec == MLPSpec.lenet(init_seed=42)  # the preset the W4 benchmark times


@pytest.mark.slow
@needs_debian_fashion
def test_lenet_trains_the_same_by_hand_and_by_autograd_in_float64() -> None:
    """One block of 40 updates on real Fashion-MNIST: hand-derived conv, pooling and dense gradients follow
    autograd's trajectory to rounding."""
    common = [*ONE_BLOCK, "--trainer.precision=64-true"]
    layers = [CONFIGS / "next_ideas" / "lenet.yaml"]
    # No whole-split metrics: for a conv net in float64 they would take most of the test's time.
    manual = run("fashion_mnist_mlp", common, EpochProbe(splits=()), layers=layers)
    native_args = [*common, "--model.class_path=models.NativeModule"]
    native = run("fashion_mnist_mlp", native_args, EpochProbe(splits=()), layers=layers)
    assert manual.module.updates_done == native.module.updates_done == 40
    assert len(manual.module.net.convs) == 2
    start = type(manual.module)(manual.module.spec).double()
    for a, b, initial in zip(manual.module.net.parameters(), native.module.net.parameters(), start.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        assert not torch.equal(a, initial.to(a))  # they did train


@pytest.mark.slow
@needs_debian_fashion
def test_one_cycle_config_spans_the_run(tmp_path) -> None:
    # With its logger: the layer adds a LearningRateMonitor, which logs the schedule to TensorBoard.
    overrides = [*ONE_BLOCK, f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    result = run("fashion_mnist_mlp", overrides, quiet=False, layers=[CONFIGS / "next_ideas" / "one_cycle.yaml"])
    scheduler = result.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == scheduler.last_epoch == result.module.updates_done == 40
    assert result.trainer.optimizers[0].param_groups[0]["momentum"] == 0  # not cycled: plain SGD
    assert list(tmp_path.glob("fashion_mnist_one_cycle/version_0/events.out.tfevents.*"))


def test_quick_and_partial_runs_do_not_write_docs() -> None:
    assert run_all.parse_args([]).out == run_all.ROOT / "docs"
    assert run_all.parse_args(["--quick"]).out == run_all.SCRATCH == run_all.parse_args(["--only", "lab04"]).out


SHIPPED = [*sorted(ROOT.glob("configs/*.yaml")), *sorted(CONFIGS.glob("*.yaml"))]


@pytest.mark.parametrize(
    "layers",
    [[p] for p in SHIPPED] + [[CONFIGS / "fashion_mnist_mlp.yaml", CONFIGS / "next_ideas" / n] for n in NEXT_IDEAS],
    ids=lambda layers: "+".join(p.stem for p in layers),
)
def test_every_shipped_config_has_the_dashboard_and_no_hp_metric(layers: list[Path]) -> None:
    """One TensorBoardDashboard, epoch-keyed logging and no placeholder hp_metric (-1) in HParams."""
    args = [a for p in layers for a in ("--config", str(p))]
    cli = make_cli([*args, "--trainer.logger.init_args.save_dir=/nonexistent"], run=False)
    dashboards = [c for c in cli.trainer.callbacks if isinstance(c, TensorBoardDashboard)]
    assert len(dashboards) == 1
    assert isinstance(cli.trainer.logger, EpochTensorBoardLogger)
    assert cli.config.trainer.logger.init_args.default_hp_metric is False


def test_lab04_spread_counts_paired_wins_and_the_chance_of_an_independent_start() -> None:
    """Two settings, two seeds: 0.5 wins from either seed; with independent starts it loses only when it drew
    3 and 1.0 drew 2 (one case in four)."""
    losses = {0.5: {0: 1.0, 1: 3.0}, 1.0: {0: 2.0, 1: 4.0}}
    assert lab04.best_per_seed(losses) == {0: 0.5, 1: 0.5}
    assert lab04.chance_best(losses, 0.5) == 0.75 and lab04.chance_best(losses, 1.0) == 0.25
    rows = lab04.seed_table(losses, {0.5: 2.8, 1.0: 0.1})
    assert rows[0] == ["0.5", "2.000000 (1.000000-3.000000)", 1.0, 2.8, "yes", "2 of 2"]
    assert rows[1][4:] == ["no", "0 of 2"]  # the lab's 0.1 lies below our 2.0-4.0
    sentence = lab04.best_sentence(losses, {0.5: 2.8, 1.0: 0.1}, lab04.LR_AXIS, "learning rate")
    assert "0.5 has the lowest final loss in 2 of 2 seeds" in sentence and "75% for 0.5, 25% for 1 " in sentence
    assert "lies inside the seed spread" in sentence and "inside our min-max for 1 of its 2" in sentence


def test_the_probe_measures_in_evaluation_mode_and_changes_nothing() -> None:
    """Whole-split metrics use no dropout mask (none drawn from the net's generator) and the batch norms'
    running statistics (left as they were), and hand the net back in the mode it was in."""
    spec = MLPSpec(input_size=2, hidden_sizes=[6], output_size=2, activation="tanh", dropout=0.5, batch_norm=True)
    module = NativeModule(spec).double()
    x, y = torch.randn(40, 2, dtype=torch.float64), torch.randint(0, 2, (40,))
    generator, statistics = module.net.dropout_generator.get_state(), copy_state(module)
    with torch.no_grad():  # as EpochProbe.measure calls it
        first = split_metrics(module, "test", x, y)
        assert module.net.training and torch.equal(module.net.dropout_generator.get_state(), generator)
        assert all(torch.equal(a, b) for a, b in zip(statistics, copy_state(module)))
        assert split_metrics(module, "test", x, y) == first
        expected = torch.nn.functional.cross_entropy(module.net.eval()(x), y).item()
    assert first["test/loss"] == pytest.approx(expected, rel=1e-12)


def copy_state(module: MLPModule) -> list[torch.Tensor]:
    return [t.clone() for t in module.net.state_dict().values()]
