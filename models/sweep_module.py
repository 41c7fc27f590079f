"""A whole grid of one net shape trained at once: every member's weights stacked on a leading member
dimension, updated by the same hand-derived layers (:mod:`models.layers`) and the same update loop
(:func:`models.engine.update_loop`) as a single run.

Members may differ in learning rate, initial weights (their own seeds), data order and hidden widths:
narrower members are padded to the widest with zero weights that a mask keeps at zero, so they
compute exactly what their own net computes. A member whose loss turns non-finite is frozen (its
learning rate set to 0 at the end of that Lightning step) and marked diverged; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from datamodules.tensor_loader import EpochPermutation, rank_batch_slices
from models.engine import row_chunks, update_loop
from models.init import initial_parameters
from models.layers import xp
from models.layers.heads import head_layer, output_activation, predicted_classes
from models.manual_net import LayerChain
from models.native_net import NativeMLP
from models.spec import MLPSpec
from models.stacked_optim import StackedAdam, StackedSGD

CURVE_POINTS = 500  # epochs logged per curve at most: TensorBoard's event writer costs ~50 us a scalar


@dataclass
class MemberData:
    """One member's splits, as its own DataModule gives them, and its training-order seed."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    seed: int


def epoch_blocks(epochs: int, epochs_per_step: int, snapshots: list[int]) -> list[range]:
    """Notebook epochs (1-based) per Lightning epoch: runs of at most ``epochs_per_step`` that end at
    every snapshot, so each snapshot is read at a block boundary."""
    blocks, start = [], 1
    for stop in sorted({*(e for e in snapshots if e < epochs), epochs}):
        while start <= stop:
            end = min(start + epochs_per_step - 1, stop)
            blocks.append(range(start, end + 1))
            start = end + 1
    return blocks


class StackedEpochLoader:
    """One stacked batch per Lightning epoch: every notebook epoch of its block, each member's rows
    in that member's own order for that epoch (its DataModule's permutation), concatenated:
    x (M, rows, features), y (M, rows). The module calls ``set_epoch`` with the block index."""

    def __init__(self, members: list[MemberData], batch_size: int, shuffle: bool, blocks: list[range]) -> None:
        self.blocks, self.shuffle = blocks, shuffle
        self.x = torch.stack([m.x_train for m in members])  # (M, n, features), gathered per epoch below
        self.y = torch.stack([m.y_train for m in members])
        n = self.x.shape[1]
        seeds = [m.seed for m in members]
        self.orders = {seed: EpochPermutation(n, shuffle, seed) for seed in seeds}  # one per data seed, not member
        self.member_seeds = seeds
        self.batches = rank_batch_slices(n, batch_size, 0, 1, drop_last=False)
        self.block = blocks[0]

    def set_epoch(self, block: int) -> None:
        """Lightning epoch ``block`` (0-based) trains this block of notebook epochs."""
        self.block = self.blocks[block]

    def __len__(self) -> int:
        return 1

    def chunks(self, rows_per_update: int | None) -> list[list[slice]]:
        """Per notebook epoch of the current block, the rows of each update within the stacked batch:
        the engine's cut, each batch on its own, then the batches of one epoch together."""
        batch_rows = [batch.stop - batch.start for batch in self.batches]
        per_batch = row_chunks(sum(batch_rows) * len(self.block), rows_per_update, batch_rows * len(self.block))
        n = len(batch_rows)
        return [[rows for group in per_batch[i : i + n] for rows in group] for i in range(0, len(per_batch), n)]

    def epoch_order(self, epoch: int) -> np.ndarray:
        """(M, n): each member's row order in notebook epoch ``epoch`` (1-based), its batches one after another."""
        by_seed = {}
        for seed, order in self.orders.items():
            order.set_epoch(epoch - 1)  # the single run's epoch index, 0-based
            by_seed[seed] = order.order()
        orders = np.stack([by_seed[seed] for seed in self.member_seeds])
        return orders[:, np.concatenate([np.arange(b.start, b.stop) for b in self.batches])]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.shuffle:
            orders = [self.epoch_order(e) for e in self.block]
        else:  # every epoch in the same order: Lab 4's 10,000 epochs need it once
            orders = [self.epoch_order(self.block[0])] * len(self.block)
        index = torch.from_numpy(np.concatenate(orders, axis=1))  # (M, rows of every epoch of the block)
        x = torch.take_along_dim(self.x, index.reshape(*index.shape, *([1] * (self.x.ndim - 2))), dim=1)
        y = torch.take_along_dim(self.y, index.reshape(*index.shape, *([1] * (self.y.ndim - 2))), dim=1)
        yield x, y


class StackedData(pl.LightningDataModule):
    def __init__(self, members: list[MemberData], batch_size: int, shuffle: bool, blocks: list[range]) -> None:
        super().__init__()
        self.members, self.batch_size, self.shuffle, self.blocks = members, batch_size, shuffle, blocks

    def train_dataloader(self) -> StackedEpochLoader:
        return StackedEpochLoader(self.members, self.batch_size, self.shuffle, self.blocks)


def map_tensors(state: object, fn: Callable[[Tensor], Tensor]) -> object:
    """``fn`` applied to every tensor of a nested dict/list state (the stacked optimiser's)."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, list):
        return [map_tensors(v, fn) for v in state]
    if isinstance(state, dict):
        return {k: map_tensors(v, fn) for k, v in state.items()}
    return state


class AutogradStack:
    """The autograd twin of a stacked :class:`LayerChain`, with the same ``loss`` / ``backward`` / ``z``:
    ``torch.func`` differentiates :class:`NativeMLP` (``functional_call``) for every member at once
    (``vmap`` of ``grad``), so a whole grid can be checked against autograd as single runs are."""

    def __init__(self, spec: MLPSpec, params: list[Tensor]) -> None:
        net = NativeMLP(spec).to(params[0].dtype).eval()  # eval: no dropout, and the sweep has none
        names = [name for name, _ in net.named_parameters()]  # layers.0.weight, layers.0.bias, ...: stack order

        def member_loss(member_params: list[Tensor], x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
            z = functional_call(net, dict(zip(names, member_params)), (x,))
            return net.loss(z, target), z

        self.params = params
        self.gradients_and_loss = vmap(grad_and_value(member_loss, has_aux=True))
        self.member_logits = vmap(lambda member_params, x: functional_call(net, dict(zip(names, member_params)), (x,)))

    def logits(self, x: Tensor) -> Tensor:
        return self.member_logits(self.params, x)

    def loss(self, x: Tensor, target: Tensor) -> Tensor:
        self.grads, (loss, self.z) = self.gradients_and_loss(self.params, x, target)
        return loss

    def backward(self) -> list[Tensor]:
        return list(self.grads)


def padded_stack(arrays: list[np.ndarray], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different sizes, zero-padded to ``shape`` and stacked; and the 0/1 mask of real entries."""
    stacked, mask = np.zeros((len(arrays), *shape)), np.zeros((len(arrays), *shape))
    for m, a in enumerate(arrays):
        region = (m, *(slice(0, s) for s in a.shape))
        stacked[region], mask[region] = a, 1.0
    return stacked, mask


class SweepModule(pl.LightningModule):
    """Trains the members of one stack together; ``results`` holds every member's figures at each
    snapshot epoch. ``optimizer`` is ``("sgd", kwargs)`` or ``("adam", kwargs)`` without the lr;
    ``lrs`` holds one learning rate per member."""

    def __init__(
        self,
        specs: list[MLPSpec],
        lrs: list[float],
        optimizer: tuple[str, dict[str, object]],
        rows_per_update: int | None,
        snapshots: list[int],
        names: list[str],
        epochs: int,
        hand_derived: bool = True,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        widest = [max(sizes) for sizes in zip(*(s.hidden_sizes for s in specs))]
        self.spec = MLPSpec(**{**specs[0].__dict__, "hidden_sizes": widest})
        self.specs, self.names, self.snapshots = specs, names, sorted(snapshots)
        self.rows_per_update, self.epochs = rows_per_update, epochs
        self.hand_derived = hand_derived  # False: the autograd twin (AutogradStack)
        self.diverged_at: list[int | None] = [None] * len(specs)
        self.results: list[dict[str, object]] = []
        sizes = self.spec.layer_sizes
        weights, biases, masks = [], [], []
        per_member = [initial_parameters(s) for s in specs]  # exactly each member's single-run draw
        for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w, w_mask = padded_stack([layers[k][0] for layers in per_member], (fan_out, fan_in))
            weights.append(nn.Parameter(torch.from_numpy(w)))
            masks.append(torch.from_numpy(w_mask))
            if self.spec.bias:
                b, _ = padded_stack([layers[k][1] for layers in per_member], (fan_out,))
                biases.append(nn.Parameter(torch.from_numpy(b)))
        self.weights = nn.ParameterList(weights)
        self.biases = nn.ParameterList(biases)
        for k, mask in enumerate(masks):
            self.register_buffer(f"mask{k}", mask)
        self.register_buffer("lrs", torch.tensor(lrs, dtype=torch.float64))
        name, kwargs = optimizer
        self.optimizer_name, self.optimizer_kwargs = name, kwargs
        self.optimizer: StackedSGD | StackedAdam | None = None
        self.optimizer_state: dict[str, object] | None = None
        self.train_losses: list[np.ndarray] = []  # per notebook epoch, one loss per member

    # ---- the stack as arrays: NumPy views on the CPU, the tensors themselves elsewhere --------
    def arrays(self, t: Tensor) -> np.ndarray | Tensor:
        """NumPy views for hand-derived updates on the CPU (lower per-call cost), else the tensors."""
        return t.detach().numpy() if self.hand_derived and t.device.type == "cpu" else t.detach()

    def stacked_params(self) -> list[np.ndarray | Tensor]:
        """In layer order, each weight then its bias, as the layers list their grads."""
        params = []
        for k, w in enumerate(self.weights):
            params.append(self.arrays(w))
            if self.spec.bias:
                params.append(self.arrays(self.biases[k]))
        return params

    def chain(self, members: slice = slice(None)) -> LayerChain | AutogradStack:
        """The layers over ``members`` of the stack (views: updates land in the stack)."""
        if not self.hand_derived:
            return AutogradStack(self.spec, [p[members] for p in self.stacked_params()])
        biases = [self.arrays(b)[members] for b in self.biases] if self.spec.bias else [None] * len(self.weights)
        return LayerChain(self.spec, [(self.arrays(w)[members], b) for w, b in zip(self.weights, biases)])

    # ---- DDP: every rank trains its own members; all ranks then hold the whole stack again ---------
    def member_shard(self) -> slice:
        """This rank's members: contiguous, ceil(M / world) each (the last rank may have fewer)."""
        per_rank = -(-len(self.names) // self.trainer.world_size)
        return slice(self.global_rank * per_rank, min(len(self.names), (self.global_rank + 1) * per_rank))

    def gather_members(self, shard_values: Tensor) -> Tensor:
        """(this rank's members, ...) -> (M, ...) on every rank; members are independent, so nothing is averaged."""
        if self.trainer.world_size == 1:
            return shard_values
        per_rank = -(-len(self.names) // self.trainer.world_size)
        padded = shard_values.new_full((per_rank, *shard_values.shape[1:]), float("nan"))
        padded[: len(shard_values)] = shard_values
        return self.all_gather(padded).reshape(-1, *shard_values.shape[1:])[: len(self.names)]

    @torch.no_grad()
    def sync_members(self) -> None:
        """Every parameter's other members from the ranks that trained them (a no-op on one process)."""
        if self.trainer.world_size == 1:
            return
        for param in self.parameters():
            param.copy_(self.gather_members(param[self.shard].contiguous()))

    def configure_optimizers(self) -> None:
        return None  # the stacked optimiser below holds one lr and one state per member

    def on_train_start(self) -> None:
        self.shard = self.member_shard()
        lr = self.arrays(self.lrs.clone())[self.shard]  # its own copy: a diverged member's lr is set to 0
        kind = {"sgd": StackedSGD, "adam": StackedAdam}[self.optimizer_name]
        self.optimizer = kind(lr=lr, **self.optimizer_kwargs)
        if self.optimizer_state is not None:  # resumed from a checkpoint
            mine = map_tensors(self.optimizer_state, lambda t: t[self.shard])
            self.optimizer.load_state_dict(mine, [p[self.shard] for p in self.stacked_params()])
        masks = [getattr(self, f"mask{k}")[self.shard] for k in range(len(self.weights))]
        self.masks = [None if bool(m.all()) else self.arrays(m) for m in masks]  # None: no member padded here

    def on_train_epoch_start(self) -> None:
        self.trainer.train_dataloader.set_epoch(self.current_epoch)

    def step(self, grads: list[np.ndarray | Tensor]) -> None:
        stride = 2 if self.spec.bias else 1
        for k, mask in enumerate(self.masks):
            if mask is not None:
                grads[k * stride] *= mask  # padded weights stay zero
        self.optimizer.step(self.params, grads)

    @torch.no_grad()
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch  # (M, rows of every epoch in the block, features), (M, rows)
        x, y = self.arrays(x[self.shard].to(self.dtype)), self.arrays(y[self.shard])  # this rank's members
        self.params = [p[self.shard] for p in self.stacked_params()]
        loader = self.trainer.train_dataloader
        per_epoch = loader.chunks(self.rows_per_update)  # every epoch of a block has as many updates
        chunks = [rows for epoch in per_epoch for rows in epoch]
        with np.errstate(all="ignore"):  # a diverging member's overflow is reported below, not warned
            losses, _ = update_loop(self.chain(self.shard), x, y, chunks, self.step)
        # (epochs, updates per epoch, members here) -> each epoch's mean loss, summed in update order
        updates = len(per_epoch[0])
        stacked = np.stack(losses) if xp.is_numpy(losses[0]) else torch.stack(losses)
        epoch_loss = torch.as_tensor(stacked.reshape(len(per_epoch), updates, -1).sum(1) / updates).T
        self.end_of_block(loader.block, self.gather_members(epoch_loss).T.cpu().numpy())

    def end_of_block(self, epochs: range, train_loss: np.ndarray) -> None:
        """``train_loss`` (epochs, M): freeze members that diverged, log each epoch's losses at that epoch,
        read the snapshot that ends the block (blocks end at every snapshot)."""
        for m in np.flatnonzero(~np.isfinite(train_loss).all(0)):
            if self.diverged_at[m] is None:
                first_bad = int(np.argmin(np.isfinite(train_loss[:, m])))
                self.diverged_at[m] = epochs[first_bad]
                if self.shard.start <= m < self.shard.stop:
                    self.optimizer.lr[m - self.shard.start] = 0.0  # frozen from the next block on: the others go on
        self.train_losses += list(train_loss)
        every = max(1, self.epochs // CURVE_POINTS)
        logged = [i for i, epoch in enumerate(epochs) if epoch % every == 0 or epoch == self.epochs]
        for i in logged if self.logger is not None else []:
            finite = train_loss[i][np.isfinite(train_loss[i])]
            if len(finite):
                self.logger.log_metrics({"train/loss_members_mean": float(finite.mean())}, step=epochs[i])
        last = epochs[-1]
        if last in self.snapshots or last == self.epochs:
            self.sync_members()
            self.results += self.evaluate(last, train_loss[-1])

    @torch.no_grad()
    def evaluate(self, epoch: int, train_loss: np.ndarray) -> list[dict[str, object]]:
        """Every member's test figures now: accuracy, macro P/R/F1, collapse and divergence flags."""
        members = self.trainer.datamodule.members
        x_test = torch.stack([m.x_test for m in members]).to(self.device, torch.float64)
        with np.errstate(all="ignore"):
            z = torch.as_tensor(self.chain().logits(self.arrays(x_test)))
        rows = []
        head, k = self.spec.head, self.spec.num_classes
        for m, member in enumerate(members):
            y_test = member.y_test.to(z.device)
            row = {
                "member": self.names[m],
                "epoch": epoch,
                "train_loss": float(train_loss[m]),
                "test_loss": float(head_layer(head, self.spec.reduction).forward(z[m], y_test)),
                "diverged": self.diverged_at[m] is not None,
            }
            if self.spec.is_classifier:
                preds, truth = predicted_classes(head, z[m]), y_test.reshape(-1).long()
                row["test_accuracy"] = float(multiclass_accuracy(preds, truth, k, average="micro"))
                row["test_precision"] = float(multiclass_precision(preds, truth, k, average="macro"))
                row["test_recall"] = float(multiclass_recall(preds, truth, k, average="macro"))
                row["test_f1"] = float(multiclass_f1_score(preds, truth, k, average="macro"))
                row["collapsed"] = len(torch.unique(preds)) < 2
            else:
                out = output_activation(head, z[m]).reshape(y_test.shape)
                row["test_mse"] = float(((out - y_test) ** 2).mean())
            rows.append(row)
        return rows

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """The stacked optimiser's state and the results so far: a resumed sweep goes on exactly."""
        # Under DDP every rank holds its own members' state: gathered (all ranks call this hook) into the whole stack's.
        whole = map_tensors(self.optimizer.state_dict(), lambda t: self.gather_members(t.to(self.device)).cpu())
        checkpoint["sweep_state"] = {
            "names": self.names,  # a resume checks that it trains the same members
            "optimizer": whole,
            "diverged_at": [-1 if e is None else e for e in self.diverged_at],
            "results": self.results,
            "train_losses": torch.as_tensor(np.array(self.train_losses)),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, object]) -> None:
        state = checkpoint["sweep_state"]
        self.diverged_at = [None if e < 0 else e for e in state["diverged_at"]]
        self.results = state["results"]
        self.train_losses = list(state["train_losses"].numpy())
        self.optimizer_state = state["optimizer"]
