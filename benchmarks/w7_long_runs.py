"""W7-W9: the notebooks' long runs of tiny nets, the whole `train.py fit` as shipped (in-process, no
test, no progress bar) against the notebook's own loop over the same rows:

- W7: configs/moons.yaml, 1,000 full-batch epochs of 2-10-2 ReLU, against a plain NumPy loop;
- W8: configs/flower.yaml, 1,000 epochs x 70 per-example updates, against the notebook's scalar loop;
- W9: configs/lab04.yaml, 1,000 full-batch epochs of the delta rule, against the plain torch loop.

Also the fixed cost of one fit: the same config for one epoch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.baselines import lab4_torch_delta_rule, moons_numpy_gd
from benchmarks.timing import interleaved
from datamodules.toy import ToyDataModule
from tests.notebook_reference import flower_rows, flower_scalar_sgd
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]
FLOWER_TRAIN = ROOT / "data/flower/flower_data_train.csv"
FLOWER_SPLIT_ROWS = 70  # configs/flower.yaml trains on a 70% split of the 100 rows


def shipped_fit(config: str, root: str, *overrides: str) -> None:
    """``python train.py fit --config <config>`` in-process, as shipped but without its test."""
    args = ["--config", str(ROOT / config), "--test_after_fit=false", "--trainer.enable_progress_bar=false"]
    args += [f"--trainer.logger.init_args.save_dir={root}", "--weights_export.print_final=false", *overrides]
    cli = make_cli(args, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)


def moons_rows():
    data = ToyDataModule(dataset="moons", noise=0.2, random_state=42, test_size=0.3, split_seed=42, batch_size=210)
    data.setup("fit")
    x, y = data.tensors("train")[:2]
    return x.numpy(), y.numpy()


def run(repeats: int = 3) -> dict[str, object]:
    root = tempfile.mkdtemp(prefix="bench_w7_")
    x, y = moons_rows()
    points, outcomes = flower_rows(FLOWER_TRAIN)
    points, outcomes = points[:FLOWER_SPLIT_ROWS], outcomes[:FLOWER_SPLIT_ROWS]  # as many rows as the config trains on
    timings = interleaved(
        {
            "moons_numpy_loop": lambda: moons_numpy_gd(x, y, 1000),
            "moons_fit": lambda: shipped_fit("configs/moons.yaml", root),
            "flower_scalar_loop": lambda: flower_scalar_sgd(points, outcomes, 1000),
            "flower_fit": lambda: shipped_fit("configs/flower.yaml", root),
            "lab04_torch_loop": lambda: lab4_torch_delta_rule(4, 0.1, 1000),
            "lab04_fit": lambda: shipped_fit("configs/lab04.yaml", root),
            "moons_fit_one_epoch": lambda: shipped_fit("configs/moons.yaml", root, "--trainer.max_epochs=1"),
        },
        repeats,
    )
    median = {name: t.median for name, t in timings.items()}
    return {
        "timings": timings,
        "ratios": {
            "W7 moons_fit / moons_numpy_loop": median["moons_fit"] / median["moons_numpy_loop"],
            "W8 flower_fit / flower_scalar_loop": median["flower_fit"] / median["flower_scalar_loop"],
            "W9 lab04_fit / lab04_torch_loop": median["lab04_fit"] / median["lab04_torch_loop"],
        },
        "flower_rows": len(points),
        "fixed_cost_s": median["moons_fit_one_epoch"],
    }
