"""W12: 4 Fashion-MNIST members (784-256-256-10 ReLU, batch 128, learning rates 0.05-0.3, float32) trained for one
epoch by ``train.py sweep`` on shared batches, against one epoch of the plain preloaded-tensor loop for one net
(W2's ``preloaded_loop``), interleaved in this process.

The sweep's epoch is timed inside its fit (as W2 times ``fit``'s); the in-process sweep as a whole (parsing, the
data, the stack, the test) and the command as a user runs it (a fresh process, reports included) are shown beside
it. The arithmetic floor is the 4 members' matrix products at the sgemm rate measured in the same run. One member is
then trained by its own ``train.py fit`` (same config and epoch) and the two sets of weights compared; for scale, that
fit is compared with the same fit by autograd: in float32 both differ by rounding only, carried through the epoch.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import Timing, interleaved
from benchmarks.w2_mnist_epoch import (
    EPOCH_GFLOP,
    EpochTimer,
    notebook_mlp,
    preloaded_batches,
    sgemm_gflops,
    train_epoch,
)
from datamodules.mnist import MNISTDataModule

ROOT = Path(__file__).resolve().parents[1]
LRS = (0.05, 0.1, 0.2, 0.3)
CONFIG = ROOT / "configs/fashion_mnist.yaml"


def sweep_args(data_dir: str) -> list[str]:
    return [
        "--config", str(CONFIG), "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
        f"--data.init_args.data_dir={data_dir}",
    ]  # fmt: skip


def write_grid(folder: Path) -> Path:
    path = folder / "fashion_lrs.yaml"
    path.write_text(f"grid:\n  model.init_args.optimizer.init_args.lr: [{', '.join(map(str, LRS))}]\n")
    return path


def own_fit(args: list[str], folder: Path, model: str) -> list[np.ndarray]:
    """Every parameter of the lr-0.1 member's own one-epoch ``train.py fit`` with ``model``'s gradients."""
    from train import make_cli

    quiet = ["--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false"]
    quiet += ["--test_after_fit=false", "--weights_export.print_final=false", "--trainer.limit_val_batches=0"]
    overrides = ["--model.init_args.optimizer.init_args.lr=0.1", f"--model={model}", *quiet]
    cli = make_cli([*args, *overrides, f"--trainer.default_root_dir={folder / model}"], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return [p.detach().numpy() for layer in cli.model.net.layers for p in (layer.weight, layer.bias)]


def largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def run(repeats: int = 3) -> dict[str, object]:
    from commands.sweep import run_sweep
    from train import make_cli

    folder = Path(tempfile.mkdtemp(prefix="bench_w12_"))
    data_dir = str(folder / "data")
    dm = MNISTDataModule(dataset="fashion_mnist", data_dir=data_dir, download=False)
    dm.setup("fit")
    x, y = dm.train_dataloader().tensors
    grid = str(write_grid(folder))
    args = sweep_args(data_dir)
    epochs, results = [], []

    def sweep_once() -> None:
        timer = EpochTimer()
        results.append(run_sweep(make_cli, args, grid, save_dir=str(folder / "runs"), callbacks=[timer]))
        epochs.append(timer.seconds)

    plain = {"preloaded_loop": lambda: train_epoch(notebook_mlp(), preloaded_batches(x, y))}
    timings = interleaved({**plain, "sweep_in_process": sweep_once}, repeats)
    timings["sweep_epoch"] = Timing("sweep_epoch (4 members, timed inside the fit)", epochs)
    command = [sys.executable, str(ROOT / "train.py"), "sweep", *args, "--sweep", grid]
    command += [f"--trainer.logger.init_args.save_dir={folder / 'command'}"]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    timings["sweep_command"] = Timing("sweep_command (a fresh process, reports included)", [seconds])
    sgemm = sgemm_gflops()
    base = timings["preloaded_loop"].median
    floor = len(LRS) * EPOCH_GFLOP / sgemm
    return {
        "timings": timings,
        "ratios": {
            "sweep_epoch / preloaded_loop": timings["sweep_epoch"].median / base,
            "sweep_in_process / preloaded_loop": timings["sweep_in_process"].median / base,
            "sweep_command / preloaded_loop": timings["sweep_command"].median / base,
            "floor: 4 members' products at the sgemm rate / preloaded_loop": floor / base,
        },
        "sgemm_gflops": sgemm,
        "threads": torch.get_num_threads(),
        "achieved_gflops": {
            "preloaded_loop (1 net)": EPOCH_GFLOP / base,
            "sweep_epoch (4 members)": len(LRS) * EPOCH_GFLOP / timings["sweep_epoch"].median,
        },
        **float32_differences(results[-1], args, folder / "single"),
    }


def float32_differences(result, args: list[str], folder: Path) -> dict[str, float]:
    """The lr-0.1 member against its own fit, and, for scale, that fit against the same fit by autograd (the two
    single runs differ by float32 rounding only, carried through an epoch of updates)."""
    manual = own_fit(args, folder, "models.ManualModule")
    native = own_fit(args, folder, "models.NativeModule")
    member = [p for pair in zip(result.final_weights("lr0.1"), result.final_biases("lr0.1")) for p in pair]
    return {
        "float32_member_difference": largest_difference(member, manual),
        "float32_manual_native_difference": largest_difference(manual, native),
        "largest_weight": max(float(np.abs(p).max()) for p in manual),
    }
