"""W2: one Fashion-MNIST training epoch (54,000 rows, 784-256-256-10 ReLU, batch 128, SGD lr 0.1),
against the MNIST-week notebook's DataLoader and a plain loop over one preloaded tensor."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, random_split
from torchvision import datasets, transforms

from benchmarks.timing import Timing, interleaved
from datamodules.mnist import STANDARD_STATS, MNISTDataModule

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_FILES = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = STANDARD_STATS["fashion_mnist"]
SIZES = (784, 256, 256, 10)
ROWS = 54_000
# forward 2P multiply-adds per row, backward 2P for dW and 2P for dA except the input layer's dX
PARAMS = sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
EPOCH_GFLOP = ROWS * (6 * PARAMS - 2 * SIZES[0] * SIZES[1]) / 1e9


def notebook_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def train_epoch(model: nn.Module, batches) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.CrossEntropyLoss()
    for x, y in batches:
        optimizer.zero_grad()
        loss = criterion(model(x.reshape(len(x), -1)), y)
        loss.backward()
        optimizer.step()


def torchvision_root() -> str:
    """torchvision's own layout, made from the Debian package's .gz files (no download)."""
    root = Path(tempfile.mkdtemp(prefix="bench_w2_"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in SYSTEM_FILES.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return str(root)


def notebook_loader(root: str) -> DataLoader:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    full = datasets.FashionMNIST(root, train=True, download=False, transform=transform)
    train, _ = random_split(full, [ROWS, len(full) - ROWS], generator=torch.Generator().manual_seed(42))
    return DataLoader(train, batch_size=128, shuffle=True)


def preloaded_batches(x: torch.Tensor, y: torch.Tensor):
    order = torch.randperm(len(x))
    for start in range(0, len(x), 128):
        idx = order[start : start + 128]
        yield x[idx], y[idx]


class EpochTimer(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def fit_args(model_class: str, save_dir: str) -> list[str]:
    return [
        "--config", str(ROOT / "configs/fashion_mnist.yaml"), "--model", model_class, "--trainer.max_epochs", "1",
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false", "--test_after_fit", "false",
        "--trainer.logger.init_args.save_dir", save_dir, "--weights_export.print_final", "false",
        "--trainer.enable_checkpointing", "false",
    ]  # fmt: skip


def our_epoch(model_class: str, save_dir: str) -> float:
    from train import make_cli

    cli = make_cli(fit_args(model_class, save_dir), run=False)
    timer = EpochTimer()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return timer.seconds


def sgemm_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(10))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_of_fit_mb(save_dir: str) -> float:
    """Peak RSS of ``python train.py fit`` (one epoch, as shipped), run as a user runs it.

    A fresh wrapper process starts the command and reports its only child's peak from the kernel's
    rusage, so nothing of this benchmark process is counted.
    """
    command = [sys.executable, str(ROOT / "train.py"), "fit", *fit_args("models.ManualModule", save_dir)]
    code = (
        "import json, resource, subprocess, sys; "
        f"subprocess.run({command!r}, check=True, capture_output=True); "
        "print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1]) / 1024


def run(repeats: int = 3) -> dict[str, object]:
    save_dir = tempfile.mkdtemp(prefix="bench_w2_runs_")
    dm = MNISTDataModule(dataset="fashion_mnist", data_dir=save_dir, download=False)
    dm.setup("fit")
    x, y = dm.train_dataloader().tensors
    assert len(x) == ROWS, len(x)
    root = torchvision_root()
    loader = notebook_loader(root)
    ours: dict[str, list[float]] = {"ours_native": [], "ours_manual": []}

    def ours_path(name: str, model_class: str):
        def run_once() -> None:
            ours[name].append(our_epoch(model_class, save_dir))

        return run_once

    fast = interleaved(
        {
            "preloaded_loop": lambda: train_epoch(notebook_mlp(), preloaded_batches(x, y)),
            "ours_native": ours_path("ours_native", "models.NativeModule"),
            "ours_manual": ours_path("ours_manual", "models.ManualModule"),
        },
        repeats,
    )
    # the epoch itself, as timed inside fit, excludes process-level setup (data loading, Trainer start)
    for name, seconds in ours.items():
        fast[name] = Timing(name, seconds)
    slow = interleaved({"notebook_dataloader": lambda: train_epoch(notebook_mlp(), loader)}, 1)
    timings = {**fast, **slow}
    base = fast["preloaded_loop"].median
    return {
        "timings": timings,
        "ratios": {
            "ours_native / preloaded_loop": fast["ours_native"].median / base,
            "ours_manual / preloaded_loop": fast["ours_manual"].median / base,
            "notebook_dataloader / preloaded_loop": slow["notebook_dataloader"].median / base,
        },
        "sgemm_gflops": sgemm_gflops(),
        "epoch_gflop": EPOCH_GFLOP,
        "achieved_gflops": {name: EPOCH_GFLOP / timings[name].median for name in timings},
        "peak_rss_mb": peak_rss_of_fit_mb(save_dir),
    }
