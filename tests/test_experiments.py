"""The experiment runner: Lab 4's repeated-rows fast path is exact, and a quick run writes RESULTS-style tables."""

from __future__ import annotations

import re

import pytest
import torch

from experiments import lab04, run_all
from experiments.runner import CONFIGS, QUIET, run
from models.lightning_modules import MLPModule
from train import make_cli


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_experiment_config_builds(config: str) -> None:
    cli = make_cli(["--config", str(CONFIGS / config), *QUIET], run=False)
    assert isinstance(cli.model, MLPModule)
    assert cli.trainer.max_epochs >= 1


def test_repeated_rows_give_the_same_weights_as_one_update_per_epoch(tmp_path) -> None:
    plain = run("lab04", ["--trainer.max_epochs=20"])
    fast = run("lab04", lab04.fast_overrides(20, 10, tmp_path))
    assert plain.trainer.global_step == fast.trainer.global_step == 20
    assert fast.trainer.current_epoch == 2
    for a, b in zip(plain.module.net.parameters(), fast.module.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


def test_weights_only_file_reloads_into_a_new_module(tmp_path) -> None:
    result = run("lab04", ["--trainer.max_epochs=5"])
    fresh = lab04.save_and_reload(result, tmp_path / "w.pt")
    assert lab04.predict_points(fresh, result.datamodule) == lab04.predict_points(result.module, result.datamodule)
    scaled, points = lab04.predict_points(fresh, result.datamodule)
    assert 0 < scaled < 1 and points == scaled * 100


def test_quick_run_writes_tables_with_numbers(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # run_all moves to the project root; monkeypatch moves back afterwards
    path = run_all.main(["--quick", "--only", "lab04", "week04", "--out", str(tmp_path), "--work-dir", str(tmp_path)])
    text = path.read_text()
    assert "Machine: " in text and "Time taken: " in text
    for heading in ("## Lab 4", "### Grid", "## Week 4", "### Try-it-now grid"):
        assert heading in text
    grid = text.split("### Grid")[1].split("Why the numbers differ")[0]
    numeric_rows = [line for line in grid.splitlines() if re.match(r"\| \d+ \| [\d.]+ \| \d\.\d{6} \|", line)]
    assert len(numeric_rows) == 9  # hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}
    assert (tmp_path / "results" / "week04_grid_f1.png").stat().st_size > 1000
    assert (tmp_path / "lab04_weights.pt").is_file()
