"""W11: 10,000 week-4 members (2-3-3-2, learning rates only) x 30 epochs of single-example SGD, float64.

- The whole ``python train.py sweep`` command as a user runs it, in a fresh process (start-up, parsing, the data,
  training, evaluation, results, figures, TensorBoard runs), against one notebook NumPy run of the same net
  (:func:`benchmarks.baselines.week04_numpy_sgd`, 30 epochs).
- The training alone, timed inside the stack's fit, as GFLOP/s and as a fraction of the sgemm rate measured in the
  same run.
- The floors no sweep command can go below: a fresh interpreter importing Lightning, and the whole command for one
  member and one epoch.
- Per-update costs of the candidate forms of one stacked update (members first with a stacked ``@``, member-last
  einsums, torch tensors), through the project's layers and optimiser.

``python -m benchmarks.w11_sweep_command --training N`` prints one in-process sweep of N members as JSON (its
seconds, the training's seconds inside the fit, and the process's memory), for the scaling table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from benchmarks.baselines import week04_numpy_sgd
from benchmarks.timing import Timing, peak_rss_mb
from benchmarks.w2_mnist_epoch import sgemm_gflops
from datamodules.synthetic import week04_blobs

ROOT = Path(__file__).resolve().parents[1]
MEMBERS, EPOCHS, ROWS = 10_000, 30, 400
SIZES = (2, 3, 3, 2)
WEIGHTS = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
# W2's count of one row's matrix products: forward 2P, dW 2P, dA 2P but for the first layer's input
FLOP_PER_MEMBER_UPDATE = 6 * WEIGHTS - 2 * SIZES[0] * SIZES[1]
TRAINING_GFLOP = MEMBERS * EPOCHS * ROWS * FLOP_PER_MEMBER_UPDATE / 1e9
CONFIG = ROOT / "configs/week04.yaml"


def write_grid(folder: Path, members: int) -> Path:
    path = folder / f"lr{members}.yaml"
    rates = ", ".join(f"{v:.6g}" for v in np.linspace(0.01, 0.2, members))
    path.write_text(f"grid:\n  model.init_args.optimizer.init_args.lr: [{rates}]\n")
    return path


def process_seconds(command: list[str]) -> float:
    """Wall time of one fresh process, start-up included."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def sweep_command(folder: Path, members: int, epochs: int) -> list[str]:
    """``python train.py sweep`` as a user types it, its runs under ``folder``."""
    return [
        sys.executable, str(ROOT / "train.py"), "sweep", "--config", str(CONFIG), "--trainer.max_epochs", str(epochs),
        "--sweep", str(write_grid(folder, members)), "--trainer.logger.init_args.save_dir", str(folder / "runs"),
    ]  # fmt: skip


class FitTimer(pl.Callback):
    """Seconds from a stack's first training step to its fit's end: the updates, the blocks' bookkeeping and the
    snapshots' evaluation, without the command's parsing, data or reports."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds += time.perf_counter() - self.start


def in_process_sweep(members: int, epochs: int) -> dict[str, float]:
    """One in-process sweep of ``members`` learning rates (after a one-member sweep, so that first-use costs stay
    outside): its seconds, the training's, and this process's memory high-water mark before and after."""
    from commands.sweep import run_sweep
    from train import make_cli

    quiet = ["--config", str(CONFIG), "--trainer.enable_progress_bar=false"]
    with tempfile.TemporaryDirectory() as scratch:
        run_sweep(make_cli, [*quiet, "--trainer.max_epochs=1"], str(write_grid(Path(scratch), 1)), save_dir=scratch)
        before = peak_rss_mb()
        timer = FitTimer()
        start = time.perf_counter()
        grid = str(write_grid(Path(scratch), members))
        run_sweep(make_cli, [*quiet, f"--trainer.max_epochs={epochs}"], grid, save_dir=scratch, callbacks=[timer])
        seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {
        "members": members,
        "seconds": seconds,
        "training_s": timer.seconds,
        "per_member_ms": 1e3 * seconds / members,
        "peak_rss_mb": peak,
        "sweep_mb": peak - before,
    }


def scaling(members: tuple[int, ...] = (1, 10, 100, 1000, MEMBERS), epochs: int = EPOCHS) -> list[dict[str, float]]:
    """:func:`in_process_sweep` per member count, each in a fresh process so that its memory is its own."""
    rows = []
    for m in members:
        command = [sys.executable, "-m", "benchmarks.w11_sweep_command", "--training", str(m), "--epochs", str(epochs)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def candidate_updates(members: int, updates: int) -> tuple[dict[str, Callable[[], None]], dict[str, list]]:
    """Per candidate form, a run of ``updates`` stacked updates (loss, hand-derived gradients, SGD) of ``members``
    week-4 nets reading one shared row each, through :class:`models.manual_net.LayerChain` and
    :class:`models.optim.SGD`, and the weights it updates (the same draw for every form)."""
    from models.engine import update_loop
    from models.manual_net import LayerChain
    from models.optim import SGD
    from models.spec import MLPSpec
    from models.sweep_module import members_last_copy

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(updates, SIZES[0])), rng.integers(0, 2, size=updates)
    drawn = [rng.normal(0, 0.2, size=(members, o, i)) for i, o in zip(SIZES[:-1], SIZES[1:])]
    spec = MLPSpec(hidden_sizes=list(SIZES[1:-1]), bias=False)
    layouts = {
        "numpy, members first (stacked @)": [w.copy() for w in drawn],
        "numpy, member-last (einsum)": [members_last_copy(w) for w in drawn],
        "torch, members first (bmm)": [torch.from_numpy(w.copy()) for w in drawn],
    }
    chunks = [slice(i, i + 1) for i in range(updates)]
    runs = {}
    for name, weights in layouts.items():
        numpy = isinstance(weights[0], np.ndarray)
        rates = np.linspace(0.01, 0.2, members)
        optimizer = SGD({"lr": rates if numpy else torch.from_numpy(rates)}, [{} for _ in weights])
        chain = LayerChain(spec, [(w, None) for w in weights])
        rows, labels = (x, y) if numpy else (torch.from_numpy(x), torch.from_numpy(y))

        def run(chain=chain, rows=rows, labels=labels, optimizer=optimizer, weights=weights) -> None:
            with np.errstate(all="ignore"), torch.no_grad():
                update_loop(chain, rows, labels, chunks, lambda g: optimizer.step(weights, g), keep_logits=False)

        runs[name] = run
    return runs, layouts


def update_candidates(members: int = MEMBERS, updates: int = 200) -> dict[str, float]:
    """Microseconds per stacked update of each :func:`candidate_updates` form, interleaved, torch on one thread
    as the sweep runs tiny nets."""
    runs, _ = candidate_updates(members, updates)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = {name: [] for name in runs}
        for run in runs.values():
            run()
        for _ in range(3):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                seconds[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {name: 1e6 * statistics.median(s) / updates for name, s in seconds.items()}


def run(repeats: int = 3) -> dict[str, object]:
    x, y, _, _ = week04_blobs(0)
    notebook = Timing("notebook_numpy_run (30 epochs, one net)")
    for _ in range(repeats):
        start = time.perf_counter()
        week04_numpy_sgd(x, y, EPOCHS)
        notebook.seconds.append(time.perf_counter() - start)
    import_floor = Timing("python -c 'import lightning.pytorch'")
    one_member = Timing("train.py sweep, 1 member x 1 epoch")
    whole = Timing(f"train.py sweep, {MEMBERS:,} members x {EPOCHS} epochs")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for _ in range(repeats):
            import_floor.seconds.append(process_seconds([sys.executable, "-c", "import lightning.pytorch"]))
            one_member.seconds.append(process_seconds(sweep_command(folder, 1, 1)))
        whole.seconds.append(process_seconds(sweep_command(folder, MEMBERS, EPOCHS)))
    rows = scaling()
    training = rows[-1]["training_s"]
    sgemm = sgemm_gflops()
    base = notebook.median
    timings = {"notebook": notebook, "import_floor": import_floor, "one_member": one_member, "whole": whole}
    return {
        "timings": timings,
        "ratios": {
            "whole command / notebook_numpy_run": whole.median / base,
            "floor: import lightning / notebook_numpy_run": import_floor.median / base,
            "floor: 1-member command / notebook_numpy_run": one_member.median / base,
            "training alone / notebook_numpy_run": training / base,
        },
        "scaling": rows,
        "training_s": training,
        "training_gflop": TRAINING_GFLOP,
        "training_gflops": TRAINING_GFLOP / training,
        "sgemm_gflops": sgemm,
        "candidates_us": update_candidates(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one W11 scaling point, printed as JSON")
    parser.add_argument("--training", type=int, required=True, help="members")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    options = parser.parse_args()
    print(json.dumps(in_process_sweep(options.training, options.epochs)))
