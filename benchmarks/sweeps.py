"""W5 and W3 through the sweep: the week-4 grid (36 trajectories x 100 epochs of single-example SGD,
snapshots at 30/60/100) and Lab 4's grid (9 configs x 10,000 full-batch epochs), each trained as one
`train.py sweep` in-process against the notebooks' own loops run one config after another. The sweep's scaling to
10,000 members is W11 (:mod:`benchmarks.w11_sweep_command`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.baselines import lab4_stacked_numpy_floor, lab4_torch_delta_rule, week04_numpy_sgd
from benchmarks.timing import Timing
from benchmarks.w7_long_runs import shipped_fit
from commands.sweep import run_sweep
from datamodules.synthetic import week04_blobs
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar=false"]
WEEK04_LRS, WEEK04_HIDDEN, WEEK04_SEEDS = (0.01, 0.05, 0.1, 0.2), ((3, 3), (5, 5), (10, 10)), (0, 1, 2)
LAB4_HIDDEN, LAB4_LRS = (4, 8, 16), (0.1, 0.5, 1.0)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def sweep_seconds(config: str, sweep: str, *overrides: str) -> float:
    """One in-process `train.py sweep` (data, stacks, training, evaluation, results), its runs in a scratch dir."""
    args = ["--config", str(ROOT / config), *overrides, *QUIET]
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        run_sweep(make_cli, args, str(ROOT / sweep), save_dir=scratch)
        return time.perf_counter() - start


def week04_grid(epochs: int = 100) -> dict[str, object]:
    """W5: the 36 trajectories as one sweep against the notebook's NumPy loop over the same configs, and
    one sequential `train.py fit` of the grid (measured on one config, times 36)."""
    x, y, _, _ = week04_blobs(0)
    loop, _ = timed(
        lambda: [
            week04_numpy_sgd(x, y, epochs, lr=lr, seed=seed, hidden=hidden)
            for lr in WEEK04_LRS
            for hidden in WEEK04_HIDDEN
            for seed in WEEK04_SEEDS
        ]
    )
    # first-use costs (building the CLI's parsers, Lightning's lazy imports) outside the timing, as in W6
    sweep_seconds("configs/week04.yaml", "configs/sweeps/week04_grid.yaml", "--trainer.max_epochs=1")
    sweep = sweep_seconds("configs/week04.yaml", "configs/sweeps/week04_grid.yaml", f"--trainer.max_epochs={epochs}")
    with tempfile.TemporaryDirectory() as scratch:
        one_fit, _ = timed(lambda: shipped_fit("configs/week04.yaml", scratch, f"--trainer.max_epochs={epochs}"))
    members = len(WEEK04_LRS) * len(WEEK04_HIDDEN) * len(WEEK04_SEEDS)
    return {
        "timings": {
            "notebook_loop": Timing("notebook_loop", [loop]),
            "sweep": Timing("sweep", [sweep]),
            "fit_grid_estimate": Timing("fit_grid_estimate (one fit x 36)", [one_fit * members]),
        },
        "ratios": {
            "sweep / notebook_loop": sweep / loop,
            "fit_grid_estimate / notebook_loop": one_fit * members / loop,
        },
    }


def lab4_grid(epochs: int = 10_000) -> dict[str, object]:
    """W3: the 9 Lab-4 configs as one sweep against the plain torch loop over them."""
    loop, _ = timed(lambda: [lab4_torch_delta_rule(h, lr, epochs) for h in LAB4_HIDDEN for lr in LAB4_LRS])
    floor, _ = timed(lambda: lab4_stacked_numpy_floor(LAB4_HIDDEN, LAB4_LRS, epochs))
    sweep_seconds("configs/lab04.yaml", "configs/sweeps/lab04_grid.yaml", "--trainer.max_epochs=1")  # first use
    sweep = sweep_seconds("configs/lab04.yaml", "configs/sweeps/lab04_grid.yaml", f"--trainer.max_epochs={epochs}")
    # What the sweep costs before and after its updates (config parsing and checks, the Trainer, the
    # results): the same sweep with one epoch. The rest is the 10,000 stacked updates.
    fixed = sweep_seconds("configs/lab04.yaml", "configs/sweeps/lab04_grid.yaml", "--trainer.max_epochs=1")
    return {
        "timings": {
            "plain_loop": Timing("plain_loop", [loop]),
            "sweep": Timing("sweep", [sweep]),
            "sweep_one_epoch": Timing("sweep_one_epoch (its fixed cost)", [fixed]),
            "stacked_numpy_floor": Timing("stacked_numpy_floor (the fewest NumPy calls)", [floor]),
        },
        "ratios": {
            "sweep / plain_loop": sweep / loop,
            "(sweep - sweep_one_epoch) / plain_loop": (sweep - fixed) / loop,
            "stacked_numpy_floor / plain_loop": floor / loop,
            "floor: (sweep_one_epoch + stacked_numpy_floor) / plain_loop": (fixed + floor) / loop,
        },
    }
