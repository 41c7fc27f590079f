"""W3: Lab 4's grid, recorded only: hidden {4, 8, 16} x lr {0.1, 0.5, 1.0}, 10,000 full-batch epochs
on the three normalised rows. The plain loop is the notebook's; ours is the manual module under a
Trainer, one Lightning epoch per notebook epoch (a later issue makes this fast)."""

from __future__ import annotations

import time

import lightning.pytorch as pl
import numpy as np
import torch

from benchmarks.baselines import LAB4_X, LAB4_Y, lab4_torch_delta_rule
from datamodules.tensor_loader import TensorBatchLoader
from models import ManualModule, MLPSpec

HIDDEN = (4, 8, 16)
LRS = (0.1, 0.5, 1.0)


def our_lab4_fit(hidden: int, lr: float, epochs: int) -> float:
    """Returns the final mean squared error on the three rows."""
    spec = MLPSpec(
        input_size=3,
        hidden_sizes=[hidden],
        output_size=1,
        activation="sigmoid",
        bias=False,
        head="mse_sigmoid",
        reduction="sum",
        init="standard_normal",
    )
    x = torch.from_numpy(LAB4_X / LAB4_X.max(0)).float()
    y = torch.from_numpy(LAB4_Y / 100).float()
    module = ManualModule(spec, optimizer=lambda p: torch.optim.SGD(p, lr=lr))
    trainer = pl.Trainer(max_epochs=epochs, barebones=True, accelerator="cpu", devices=1)
    trainer.fit(module, TensorBatchLoader((x, y), batch_size=3))
    with torch.no_grad():
        out = torch.sigmoid(module.net(x))
    return float(((out - y) ** 2).mean())


def run(epochs: int = 10_000, our_configs: int = 1) -> dict[str, object]:
    grid = [(h, lr) for h in HIDDEN for lr in LRS]
    rows = []
    start = time.perf_counter()
    for h, lr in grid:
        t = time.perf_counter()
        mse, prediction = lab4_torch_delta_rule(h, lr, epochs)
        rows.append(
            {
                "hidden": h,
                "lr": lr,
                "plain_seconds": time.perf_counter() - t,
                "plain_mse": mse,
                "plain_prediction": prediction * 100,
            }
        )
    plain_total = time.perf_counter() - start
    ours_seconds = []
    for row in rows[:our_configs]:
        t = time.perf_counter()
        row["ours_mse"] = our_lab4_fit(row["hidden"], row["lr"], epochs)
        ours_seconds.append(time.perf_counter() - t)
        row["ours_seconds"] = ours_seconds[-1]
    ours_total = float(np.mean(ours_seconds)) * len(grid)
    return {"rows": rows, "plain_total": plain_total, "ours_total_estimate": ours_total, "ours_measured": our_configs}
