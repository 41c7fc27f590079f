"""The experiment runner: Lab 4's repeated-rows fast path is exact, and a quick run writes RESULTS-style tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from callbacks.tensorboard_dashboard import TensorBoardDashboard
from callbacks.tensorboard_logger import EpochTensorBoardLogger
from commands.sweep import read_sweep_file
from experiments import lab04, run_all, week07
from experiments.probe import EpochProbe, split_metrics
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


def test_lab04_sweep_files_hold_the_notebook_lists() -> None:
    assert read_sweep_file(str(lab04.LR_SWEEP))["grid"] == {lab04.LR_AXIS: list(lab04.NOTEBOOK_LR)}
    assert read_sweep_file(str(lab04.HIDDEN_SWEEP))["grid"] == {lab04.HIDDEN_AXIS: [[h] for h in lab04.NOTEBOOK_HIDDEN]}


@pytest.mark.parametrize("sweep_file, axis", [("LR_SWEEP", "LR_AXIS"), ("HIDDEN_SWEEP", "HIDDEN_AXIS")])
def test_lab04_sweeps_equal_the_single_fits(tmp_path, sweep_file: str, axis: str) -> None:
    """Each member of the lr and hidden-size sweeps ends where its own `train.py fit` does, to 1e-12."""
    axis = getattr(lab04, axis)
    result, _ = lab04.lab_sweep(getattr(lab04, sweep_file), 20, tmp_path)
    losses = lab04.final_losses(result, axis)
    assert len(losses) == len(result.member_curves()) > 1
    for name, values, _ in result.member_curves():
        single = run("lab04", [f"--{axis}={json.dumps(values[axis])}", "--trainer.max_epochs=20"])
        for layer, w in zip(single.module.net.layers, result.final_weights(name)):
            torch.testing.assert_close(layer.weight.detach(), torch.from_numpy(w), rtol=0, atol=1e-12)
        key = values[axis][0] if axis == lab04.HIDDEN_AXIS else values[axis]
        assert losses[key] == pytest.approx(single.last["train/mse"], rel=0, abs=1e-12)


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
    lr_table = text.split("### Learning rates")[1].split("### Hidden sizes")[0]
    assert len(re.findall(r"^\| [\d.]+ \| \d\.\d{6} \| \d\.\d{6} \|$", lr_table, re.M)) == 4
    hidden_table = text.split("### Hidden sizes")[1].split("### Grid")[0]
    assert len(re.findall(r"^\| \d+ \| \d\.\d{6} \| \d\.\d{6} \|$", hidden_table, re.M)) == 5
    grid = text.split("### Grid")[1].split("Why the numbers differ")[0]
    numeric_rows = [line for line in grid.splitlines() if re.match(r"\| \d+ \| [\d.]+ \| \d\.\d{6} \|", line)]
    assert len(numeric_rows) == 9  # hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}
    assert (tmp_path / "results" / "week04_grid_f1.png").stat().st_size > 1000
    assert (tmp_path / "lab04_weights.pt").is_file()


def test_week07_init_sweep_names_the_notebook_stds_and_scales_snapshots_for_quick(tmp_path) -> None:
    full = read_sweep_file(str(week07.init_sweep_file(quick=False, work_dir=tmp_path)))
    assert [week07.init_name(std) for std in full["grid"][week07.STD_AXIS]] == list(week07.INITS)
    assert full["grid"]["seed"] == [0, 1, 2]
    quick = read_sweep_file(str(week07.init_sweep_file(quick=True, work_dir=tmp_path)))
    assert quick["grid"] == full["grid"] and quick["snapshots"] == [e // 10 for e in full["snapshots"]]
    assert Path(quick["path"]).parent == tmp_path


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
