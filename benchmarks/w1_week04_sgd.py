"""W1: the week-4 notebook's single-example SGD (2-3-3-2 sigmoid, no bias, float64, 400 rows x 30
epochs = 12,000 updates, every step's loss kept), timed in one process against plain loops."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.baselines import week04_numpy_sgd, week04_torch_sgd
from benchmarks.timing import Timing, interleaved
from datamodules.synthetic import week04_blobs
from models import ManualModule, MLPSpec
from train import make_cli

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 30
CALLBACKS_OFF = ["--trainer.callbacks=[]", "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0"]


class StraightforwardModule(pl.LightningModule):
    """What a first Lightning port of the notebook looks like: batch 1 DataLoader, autograd, self.log."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(2, 3, bias=False),
            nn.Sigmoid(),
            nn.Linear(3, 3, bias=False),
            nn.Sigmoid(),
            nn.Linear(3, 2, bias=False),
        )
        self.criterion = nn.CrossEntropyLoss()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self.model(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def straightforward_fit(x: np.ndarray, y: np.ndarray, root: str) -> None:
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        precision="64-true",
        enable_progress_bar=False,
        default_root_dir=root,
        enable_model_summary=False,
    )
    trainer.fit(StraightforwardModule(), DataLoader(data, batch_size=1, shuffle=True))


def barebones_fit(x: np.ndarray, y: np.ndarray) -> None:
    from datamodules.tensor_loader import TensorBatchLoader

    spec = MLPSpec(input_size=2, hidden_sizes=[3, 3], output_size=2, activation="sigmoid", bias=False)
    loader = TensorBatchLoader((torch.from_numpy(x), torch.from_numpy(y)), batch_size=1, shuffle=True)
    trainer = pl.Trainer(max_epochs=EPOCHS, precision="64-true", barebones=True)
    trainer.fit(ManualModule(spec), loader)


def our_fit(model_class: str, root: str, *overrides: str) -> pl.LightningModule:
    """``python train.py fit --config configs/week04.yaml`` in-process, as shipped (no test afterwards)."""
    cli = make_cli(
        args=[
            "--config",
            str(ROOT / "configs/week04.yaml"),
            "--model",
            model_class,
            "--test_after_fit",
            "false",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger.init_args.save_dir",
            root,
            "--weights_export.print_final",
            "false",
            *overrides,
        ],
        run=False,
    )
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return cli.model


def run(repeats: int = 5) -> dict[str, object]:
    x, y, _, _ = week04_blobs(0)
    tmp = tempfile.mkdtemp(prefix="bench_w1_")
    fast = interleaved(
        {
            "numpy_loop": lambda: week04_numpy_sgd(x, y, EPOCHS),
            "torch_loop": lambda: week04_torch_sgd(x, y, EPOCHS),
            "ours_manual": lambda: our_fit("models.ManualModule", tmp),
            "ours_native": lambda: our_fit("models.NativeModule", tmp),
            "ours_manual_callbacks_off": lambda: our_fit("models.ManualModule", tmp, *CALLBACKS_OFF),
        },
        repeats,
    )
    slow = interleaved(
        {
            "straightforward_lightning": lambda: straightforward_fit(x, y, tmp),
            "barebones_manual": lambda: barebones_fit(x, y),
        },
        1,
    )
    reference, _ = week04_numpy_sgd(x, y, EPOCHS)
    ours = our_fit("models.ManualModule", tmp)
    max_diff = max(
        float(np.abs(layer.weight.detach().double().numpy().T - w).max())
        for layer, w in zip(ours.net.layers, reference)
    )
    timings: dict[str, Timing] = {**fast, **slow}
    return {
        "timings": timings,
        "ratios": {
            "ours_manual / numpy_loop": fast["ours_manual"].median / fast["numpy_loop"].median,
            "ours_native / torch_loop": fast["ours_native"].median / fast["torch_loop"].median,
            "ours_manual_callbacks_off / numpy_loop": fast["ours_manual_callbacks_off"].median
            / fast["numpy_loop"].median,
        },
        "max_weight_diff_vs_numpy_loop": max_diff,
    }
