"""A module's start as a plain PyTorch script makes it: torch's default initialisation and torch's data order.

The week-4 notebook's torch run builds its model from ``nn.Linear`` layers, whose constructors draw torch's
default initialisation from the global generator, and then orders every epoch's rows with
``torch.randperm`` from that same generator. :class:`TorchStart` gives a module exactly this start:
``torch.manual_seed(seed)``, every layer's own ``reset_parameters()`` in the order the net builds them
(conv layers, then dense), then one ``randperm`` per epoch from where those draws left the generator.
``train.py compare --twin_start torch`` puts it on the autograd twin. The global generator is left as it was.
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch

from datamodules.tensor_loader import TensorBatchLoader


class TorchRandpermOrder:
    """Epoch e's row order is the (e+1)-th ``torch.randperm(n)`` drawn from ``generator``: a stand-in for the
    loader's ``EpochPermutation`` (``datamodules/tensor_loader.py``), with the attributes the loader reads."""

    def __init__(self, n: int, generator: torch.Generator, seed: int) -> None:
        self.n, self.shuffle, self.seed = n, True, seed
        self.keep = 2  # the loader raises it when it groups epochs; every order drawn is kept here anyway
        self.generator = generator
        self.orders: list[np.ndarray] = []

    def order(self, epoch: int) -> np.ndarray:
        """The order of ``epoch``; earlier epochs' orders are drawn first."""
        while len(self.orders) <= epoch:
            self.orders.append(torch.randperm(self.n, generator=self.generator).numpy())
        return self.orders[epoch]


class TorchStart(pl.Callback):
    """Re-initialises the module's net with torch's default rule under ``torch.manual_seed(seed)`` at fit start
    and, when the config shuffles, serves the training rows in ``torch.randperm`` order from that generator.

    Put it first among the callbacks, so the weights export and the gradient check see the torch start.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generator = torch.Generator()
        self.order: TorchRandpermOrder | None = None

    @torch.no_grad()
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The draws happen in the trainer's dtype (float64 under 64-true, as the notebook's default dtype)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            for layer in pl_module.net.all_layers():
                layer.reset_parameters()  # torch's own nn.Linear / nn.Conv2d initialisation
            self.generator.set_state(torch.get_rng_state())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.serve_torch_order(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Again at every epoch (callbacks run before the module selects the epoch), in case the loader was rebuilt."""
        self.serve_torch_order(trainer)

    def serve_torch_order(self, trainer: pl.Trainer) -> None:
        loader = trainer.train_dataloader
        if not isinstance(loader, TensorBatchLoader):
            raise ValueError(
                "TorchStart orders the rows of the project's TensorBatchLoader; this DataModule's training loader "
                f"is a {type(loader).__name__}"
            )
        current = loader.row_order
        if current is self.order or not current.shuffle:  # shuffle: false keeps the config's fixed order
            return
        if self.order is None:
            self.order = TorchRandpermOrder(current.n, self.generator, self.seed)
        self.order.keep = current.keep
        loader.use_row_order(self.order)
