"""A whole grid of one net shape trained at once: every member's weights stacked on a leading member
dimension, updated by the same hand-derived layers (:mod:`models.layers`), update loop
(:func:`models.engine.update_loop`) and optimiser rules (:mod:`models.optim`) as a single run.

Members may differ in learning rate, initial weights (their own seeds), data order and hidden widths:
narrower members are padded to the widest with zero weights that a mask keeps at zero, so they
compute exactly what their own net computes. Members that share a data order share every batch (one copy of the
data and of each batch, :class:`datamodules.tensor_loader.TensorBatchLoader`).

A Lightning epoch trains a block of notebook epochs, each whole (small data), or one notebook epoch in batches
(data too large to copy per block); blocks end at every snapshot, where every member is evaluated. A member that
diverges (:class:`models.divergence.DivergenceRule`) is frozen, its learning rate set to 0 at the end of that
block, and flagged; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from datamodules.tensor_loader import TensorBatchLoader
from models.divergence import REFERENCE_ROWS, DivergenceRule
from models.engine import NUMPY_PATH_MAX_PARAMETERS, epoch_chunks, one_thread, row_chunks, update_loop
from models.init import initial_parameters
from models.layers import xp
from models.layers.heads import head_layer, predicted_classes
from models.manual_net import LayerChain
from models.metrics import grouped_metrics
from models.native_net import NativeMLP
from models.optim import SGD, Adam, copy_array
from models.spec import MLPSpec

CURVE_POINTS = 500  # epochs logged per curve at most
# From this many members on, a NumPy stack keeps its member axis innermost in memory (see ``lay_out_members_last``).
MEMBERS_LAST_MIN = 64
LOSSES_KEPT = 2**20  # per-update losses (one per member) a training step holds at once
EVALUATION_FLOATS = 2**18  # activations a forward pass over the whole stack holds at once


@dataclass
class MemberData:
    """One member's splits, as its own DataModule gives them (the same tensors for every member of one data
    config), and its data-order seed."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    seed: int


def shares_tensors(members: list[MemberData]) -> bool:
    first = members[0]
    return all(m.x_train is first.x_train and m.y_train is first.y_train for m in members)


def stack_loader(members: list[MemberData], batch_size: int, shuffle: bool, whole_epochs: bool) -> TensorBatchLoader:
    """The stack's training loader: one copy of data the members share, per-member rows where they differ."""
    shared = shares_tensors(members)
    if shared:
        tensors = (members[0].x_train, members[0].y_train)
    else:
        tensors = (torch.stack([m.x_train for m in members]), torch.stack([m.y_train for m in members]))
    seeds = [m.seed for m in members]
    return TensorBatchLoader(
        tensors,
        batch_size,
        shuffle,
        seeds if len(set(seeds)) > 1 else seeds[0],
        shard=False,  # under DDP every rank trains its own members on every row
        per_member_tensors=not shared,
        whole_epochs=whole_epochs,
    )


class StackedData(pl.LightningDataModule):
    def __init__(self, members: list[MemberData], loader: TensorBatchLoader) -> None:
        super().__init__()
        self.members, self.loader = members, loader

    def train_dataloader(self) -> TensorBatchLoader:
        return self.loader


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
        self.shared_gradients_and_loss = vmap(grad_and_value(member_loss, has_aux=True), in_dims=(0, None, None))
        self.member_logits = vmap(lambda member_params, x: functional_call(net, dict(zip(names, member_params)), (x,)))
        self.shared_logits = vmap(
            lambda member_params, x: functional_call(net, dict(zip(names, member_params)), (x,)), in_dims=(0, None)
        )

    def logits(self, x: Tensor) -> Tensor:
        members = x.ndim == 3
        return (self.member_logits if members else self.shared_logits)(self.params, x)

    def loss(self, x: Tensor, target: Tensor) -> Tensor:
        members = x.ndim == 3
        function = self.gradients_and_loss if members else self.shared_gradients_and_loss
        self.grads, (loss, self.z) = function(self.params, x, target)
        return loss

    def backward(self) -> list[Tensor]:
        return list(self.grads)


def members_last_copy(a: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """The same stack (M, ...) laid out with the member axis innermost in memory."""
    if xp.is_numpy(a):
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 0, -1)), -1, 0)
    return a.detach().movedim(0, -1).contiguous().movedim(-1, 0)


def copy_like(param: np.ndarray | Tensor, values: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """A copy of ``values`` (optimiser state of ``param``'s shape, or a number's) in ``param``'s memory layout."""
    if values.shape != param.shape:
        return copy_array(values)
    out = np.empty_like(param) if xp.is_numpy(param) else torch.empty_like(param)
    out[...] = values
    return out


def widest_spec(specs: list[MLPSpec]) -> MLPSpec:
    """The net a stack computes: every hidden layer as wide as its widest member's (the others are padded)."""
    widest = [max(sizes) for sizes in zip(*(s.hidden_sizes for s in specs))]
    return MLPSpec(**{**specs[0].__dict__, "hidden_sizes": widest})


def padded_stack(arrays: list[np.ndarray], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different sizes, zero-padded to ``shape`` and stacked; and the 0/1 mask of real entries."""
    stacked, mask = np.zeros((len(arrays), *shape)), np.zeros((len(arrays), *shape))
    for m, a in enumerate(arrays):
        region = (m, *(slice(0, s) for s in a.shape))
        stacked[region], mask[region] = a, 1.0
    return stacked, mask


class SweepModule(pl.LightningModule):
    """Trains the members of one stack together; ``results`` holds every member's figures at each snapshot epoch.

    ``optimizer`` is ``("sgd", kwargs)`` or ``("adam", kwargs)`` without the lr; ``lrs`` holds one learning rate per
    member; ``plan[i]`` the notebook epochs (0-based) of Lightning epoch i.
    """

    def __init__(
        self,
        specs: list[MLPSpec],
        lrs: list[float],
        optimizer: tuple[str, dict[str, object]],
        rows_per_update: int | None,
        snapshots: list[int],
        names: list[str],
        plan: list[range],
        hand_derived: bool = True,
        divergence: DivergenceRule | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.spec = widest_spec(specs)
        self.specs, self.names, self.snapshots = specs, names, sorted(snapshots)
        self.rows_per_update, self.plan = rows_per_update, plan
        self.epochs = plan[-1].stop if plan else 0
        self.hand_derived = hand_derived  # False: the autograd twin (AutogradStack)
        sizes = self.spec.layer_sizes
        per_net = sum(i * o + (o if self.spec.bias else 0) for i, o in zip(sizes[:-1], sizes[1:]))
        self.numpy_path = hand_derived and per_net <= NUMPY_PATH_MAX_PARAMETERS  # as for a single run
        self.divergence = divergence or DivergenceRule()
        self.diverged_at: list[int | None] = [None] * len(specs)
        self.results: list[dict[str, object]] = []
        self.train_losses: list[np.ndarray] = []  # per notebook epoch, one loss per member
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
        self.optimizer_name, self.optimizer_kwargs = optimizer
        self.optimizer: SGD | Adam | None = None
        self.optimizer_states: list[dict[str, object]] | None = None  # restored from a checkpoint
        self.initial_loss: np.ndarray | None = None  # the divergence rule's reference, per member
        self.epoch_loss_sum: np.ndarray | Tensor | None = None  # an epoch served in batches: its running sum
        self.epoch_updates = 0
        self.restore_threads: Callable[[], None] | None = None  # set while a stack of tiny nets runs on one thread

    # ---- the stack as arrays: NumPy views on the CPU, the tensors themselves elsewhere --------
    def arrays(self, t: Tensor) -> np.ndarray | Tensor:
        """NumPy views for hand-derived updates of tiny nets on the CPU (lower per-call cost), else the tensors
        (whose kernels are faster on matrices of a few hundred rows and columns, and run on any device)."""
        return t.detach().numpy() if self.numpy_path and t.device.type == "cpu" else t.detach()

    def layer_params(self) -> list[nn.Parameter]:
        """In layer order, each weight then its bias, as the layers list their grads."""
        params = []
        for k, w in enumerate(self.weights):
            params += [w, self.biases[k]] if self.spec.bias else [w]
        return params

    def stacked_params(self) -> list[np.ndarray | Tensor]:
        """:meth:`layer_params` as the arrays the update loop works on."""
        return [self.arrays(p) for p in self.layer_params()]

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

    def setup(self, stage: str) -> None:
        on_cpu = isinstance(self.trainer.accelerator, CPUAccelerator)
        self.restore_threads = one_thread(self.numpy_path and on_cpu)  # tiny nets, as a single tiny run does

    def teardown(self, stage: str) -> None:
        if self.restore_threads is not None:
            self.restore_threads()
            self.restore_threads = None

    @torch.no_grad()
    def lay_out_members_last(self) -> None:
        """Parameters and masks with the member axis innermost in memory, same shapes and values. On the NumPy
        path a stack of many tiny nets then runs each layer's products as einsums and every other operation as
        one vectorised pass over all members (:mod:`models.layers.xp`); fewer members run faster as they are."""
        numpy_stack = xp.is_numpy(self.arrays(self.weights[0]))
        if not numpy_stack or self.shard.stop - self.shard.start < MEMBERS_LAST_MIN or self.members_last:
            return
        for params in (self.weights, self.biases):
            for k, param in enumerate(params):
                params[k] = nn.Parameter(members_last_copy(param))
        for k in range(len(self.weights)):
            setattr(self, f"mask{k}", members_last_copy(getattr(self, f"mask{k}")))

    @property
    def members_last(self) -> bool:
        return xp.members_last(self.arrays(self.weights[0]))

    def on_train_start(self) -> None:
        self.shard = self.member_shard()
        self.lay_out_members_last()
        self.params = [p[self.shard] for p in self.stacked_params()]
        hyper = {"lr": self.arrays(self.lrs.clone())[self.shard], **self.optimizer_kwargs}  # a frozen member: lr 0
        states: list[dict[str, object]] = [{} for _ in self.params]
        if self.optimizer_states is not None:  # resumed from a checkpoint
            hyper["lr"] = self.arrays(self.optimizer_states[0]["lr"].to(self.device))[self.shard]
            for state, saved, param in zip(states, self.optimizer_states[1:], self.params):
                for key, value in saved.items():
                    mine = value[self.shard].to(self.device) if isinstance(value, Tensor) else value
                    state[key] = copy_like(param, self.arrays(mine)) if isinstance(mine, Tensor) else mine
        self.optimizer = {"sgd": SGD, "adam": Adam}[self.optimizer_name](hyper, states)
        if self.initial_loss is None:
            self.initial_loss = self.measure_initial_loss()
        masks = [getattr(self, f"mask{k}")[self.shard] for k in range(len(self.weights))]
        self.masks = [None if bool(m.all()) else self.arrays(m) for m in masks]  # None: no member padded here

    @torch.no_grad()
    def measure_initial_loss(self) -> np.ndarray:
        """(M,): every member's loss at its initial weights on the first training rows, the divergence rule's
        reference (a first epoch that already blew up is none)."""
        members = self.trainer.datamodule.members
        shared = shares_tensors(members)
        rows = slice(0, REFERENCE_ROWS)
        x = members[0].x_train[rows] if shared else torch.stack([m.x_train[rows] for m in members])
        y = members[0].y_train[rows] if shared else torch.stack([m.y_train[rows] for m in members])
        x, y = self.arrays(x.to(self.device, self.dtype)), self.arrays(y.to(self.device))
        with np.errstate(all="ignore"):
            losses = [
                torch.as_tensor(self.chain(group).loss(x if shared else x[group], y if shared else y[group]))
                for group in self.member_groups(x.shape[-2])
            ]
        return torch.cat(losses).double().cpu().numpy()

    def member_groups(self, rows: int) -> list[slice]:
        """The stack's members in groups whose activations on ``rows`` rows hold about EVALUATION_FLOATS numbers:
        one pass of thousands of members over every row would allocate, and first touch, gigabytes."""
        count, size = len(self.names), max(1, EVALUATION_FLOATS // (rows * max(self.spec.layer_sizes[1:])))
        return [slice(first, min(first + size, count)) for first in range(0, count, size)]

    def on_train_epoch_start(self) -> None:
        self.trainer.train_dataloader.set_epochs(self.plan[self.current_epoch])

    def step(self, grads: list[np.ndarray | Tensor]) -> None:
        stride = 2 if self.spec.bias else 1
        for k, mask in enumerate(self.masks):
            if mask is not None:
                grads[k * stride] *= mask  # padded weights stay zero
        self.optimizer.step(self.params, grads)

    @torch.no_grad()
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loader = self.trainer.train_dataloader
        x, y = batch  # (rows, features) shared by every member, or (M, rows, features) per member
        if loader.member_orders or loader.per_member_tensors:
            x, y = x[self.shard], y[self.shard]  # this rank's members
        x, y = self.arrays(x.to(self.dtype)), self.arrays(y)
        if self.members_last and x.ndim == 3:  # each member's own rows, laid out as the weights
            x, y = members_last_copy(x), members_last_copy(y)
        epochs = self.plan[self.current_epoch]
        if loader.grouped():
            chunks_per_epoch = epoch_chunks(loader.batch_rows(), len(epochs), self.rows_per_update)
        else:
            chunks_per_epoch = [row_chunks(x.shape[-2], self.rows_per_update)]
        chain = self.chain(self.shard)
        updates = len(chunks_per_epoch[0])  # every epoch of a block has as many updates
        # Each update's losses are kept until its epochs' sums are taken: some epochs at a time, so that memory
        # stays below LOSSES_KEPT floats however many members and epochs a block holds.
        together = max(1, LOSSES_KEPT // (updates * len(self.params[0])))  # epochs per call
        sums = []  # (epochs, members here) per call: each epoch's summed loss
        with np.errstate(all="ignore"):  # a diverging member's overflow is reported below, not warned
            for first in range(0, len(chunks_per_epoch), together):
                group = chunks_per_epoch[first : first + together]
                chunks = [rows for epoch in group for rows in epoch]
                losses, _ = update_loop(chain, x, y, chunks, self.step, keep_logits=False)
                stacked = np.stack(losses) if xp.is_numpy(losses[0]) else torch.stack(losses)  # (updates, members)
                sums.append(stacked.reshape(len(group), updates, -1).sum(1))
        if loader.grouped():
            self.end_of_epochs(epochs, (np.concatenate(sums) if xp.is_numpy(sums[0]) else torch.cat(sums)) / updates)
        else:  # one epoch in batches: its mean loss once it ends
            total = sums[0][0]
            self.epoch_loss_sum = total if self.epoch_loss_sum is None else self.epoch_loss_sum + total
            self.epoch_updates += updates

    def on_train_epoch_end(self) -> None:
        if self.epoch_loss_sum is not None:
            mean = self.epoch_loss_sum / self.epoch_updates
            self.epoch_loss_sum, self.epoch_updates = None, 0
            self.end_of_epochs(self.plan[self.current_epoch], mean[None])

    def end_of_epochs(self, epochs: range, shard_loss: np.ndarray | Tensor) -> None:
        """``shard_loss`` (epochs, this rank's members): freeze members that diverged, log each epoch's mean loss
        at that epoch, read the snapshot that ends the block (blocks end at every snapshot)."""
        train_loss = self.gather_members(torch.as_tensor(shard_loss).T).T.cpu().numpy()  # (epochs, M)
        self.freeze_diverged(epochs, train_loss)
        self.train_losses += list(train_loss)
        every = max(1, self.epochs // CURVE_POINTS)
        for i, epoch in enumerate(range(epochs.start + 1, epochs.stop + 1)):
            if self.logger is not None and (epoch % every == 0 or epoch == self.epochs):
                finite = train_loss[i][np.isfinite(train_loss[i])]
                if len(finite):
                    self.logger.log_metrics({"train/loss_members_mean": float(finite.mean())}, step=epoch)
        if epochs.stop in self.snapshots or epochs.stop == self.epochs:
            self.sync_members()
            self.results += self.evaluate(epochs.stop, train_loss[-1])

    def freeze_diverged(self, epochs: range, train_loss: np.ndarray) -> None:
        """Members whose loss turned non-finite or grew past the rule's bound, or whose weights did: flagged at the
        first such epoch and frozen (lr 0) from the next block on."""
        bad = ~np.isfinite(train_loss) | self.divergence.grown(train_loss, self.initial_loss)
        largest = self.gather_members(self.largest_weights()).cpu().numpy()
        bound = self.divergence.max_abs_weight
        bad[-1] |= ~np.isfinite(largest) | ((largest > bound) if bound else False)
        for m in np.flatnonzero(bad.any(0)):
            if self.diverged_at[m] is None:
                self.diverged_at[m] = epochs.start + 1 + int(np.argmax(bad[:, m]))
                if self.shard.start <= m < self.shard.stop:
                    self.optimizer.hyper["lr"][m - self.shard.start] = 0.0  # the others go on

    def largest_weights(self) -> Tensor:
        """(this rank's members,): each member's largest weight magnitude."""
        flat = [torch.as_tensor(p).reshape(p.shape[0], -1).abs().amax(1) for p in self.params]
        return torch.stack(flat, 1).amax(1).to(self.device)

    @torch.no_grad()
    def evaluate(self, epoch: int, train_loss: np.ndarray) -> list[dict[str, object]]:
        """Every member's test figures now: accuracy, macro P/R/F1 (or MSE), collapse and divergence flags."""
        members = self.trainer.datamodule.members
        shared = shares_tensors(members)
        x_test = members[0].x_test if shared else torch.stack([m.x_test for m in members])
        y_test = members[0].y_test if shared else torch.stack([m.y_test for m in members])
        x_test, y_test = self.arrays(x_test.to(self.device, self.dtype)), y_test.to(self.device)
        with np.errstate(all="ignore"):
            z = torch.cat(  # (M, rows, K)
                [
                    torch.as_tensor(self.chain(group).logits(x_test if shared else x_test[group]))
                    for group in self.member_groups(x_test.shape[-2])
                ]
            )
        if shared:
            y_test = y_test.expand(len(members), *y_test.shape)
        test_loss = torch.as_tensor(head_layer(self.spec.head, self.spec.reduction).forward(z, y_test))
        values = {k: v.cpu().tolist() for k, v in grouped_metrics(self.spec, z, y_test, "test_").items()}
        rows = []
        for m, name in enumerate(self.names):
            row = {
                "member": name,
                "epoch": epoch,
                "train_loss": float(train_loss[m]),
                "test_loss": float(test_loss[m]),
                "diverged": self.diverged_at[m] is not None,
                **{k: v[m] for k, v in values.items() if self.spec.is_classifier or k == "test_mse"},
            }
            if self.spec.is_classifier:
                row["collapsed"] = len(torch.unique(predicted_classes(self.spec.head, z[m]))) < 2
            rows.append(row)
        return rows

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """The stacked optimiser's state and the results so far: a resumed sweep goes on exactly. Under DDP every
        rank holds its own members' state, gathered here (all ranks call this hook) into the whole stack's."""

        def whole(values: object) -> object:
            if not isinstance(values, (np.ndarray, Tensor)) or np.ndim(values) == 0:
                return values
            return self.gather_members(torch.as_tensor(values).to(self.device)).cpu().clone()

        states = [{"lr": whole(self.optimizer.hyper["lr"])}]
        states += [{k: whole(v) for k, v in state.items()} for state in self.optimizer.states]
        checkpoint["sweep_state"] = {
            "names": self.names,  # a resume checks that it trains the same members
            "optimizer": states,
            "diverged_at": [-1 if e is None else e for e in self.diverged_at],
            "results": self.results,
            "train_losses": torch.as_tensor(np.array(self.train_losses)),
            "initial_loss": torch.as_tensor(self.initial_loss),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, object]) -> None:
        state = checkpoint["sweep_state"]
        self.diverged_at = [None if e < 0 else e for e in state["diverged_at"]]
        self.results = state["results"]
        self.train_losses = list(state["train_losses"].numpy())
        self.optimizer_states = state["optimizer"]
        self.initial_loss = state["initial_loss"].numpy()


@torch.no_grad()
def member_gradient_errors(module: SweepModule, members: list[MemberData], rows: int) -> np.ndarray:
    """Each member's worst relative error, |hand - autograd| / max(|hand|, |autograd|, 1e-12), over every parameter
    entry, both gradients taken in float64 on the first ``rows`` training rows at the stack's current weights."""
    shared = shares_tensors(members)
    x = members[0].x_train[:rows] if shared else torch.stack([m.x_train[:rows] for m in members])
    y = members[0].y_train[:rows] if shared else torch.stack([m.y_train[:rows] for m in members])
    params = [p.detach().double().clone() for p in module.layer_params()]
    hand = LayerChain(module.spec, pairs(params, module.spec.bias))
    hand.loss(x.double(), y)
    autograd = AutogradStack(module.spec, params)
    autograd.loss(x.double(), y)
    worst = np.zeros(len(members))
    for g_hand, g_auto in zip(hand.backward(), autograd.backward()):
        error = (g_hand - g_auto).abs() / torch.maximum(g_hand.abs(), g_auto.abs()).clamp(min=1e-12)
        worst = np.maximum(worst, error.reshape(len(members), -1).amax(1).numpy())
    return worst


def pairs(params: list[Tensor], bias: bool) -> list[tuple[Tensor, Tensor | None]]:
    """[W1, b1, W2, b2, ...] (or [W1, W2, ...] without biases) as the layers' (weight, bias) pairs."""
    if bias:
        return list(zip(params[0::2], params[1::2]))
    return [(w, None) for w in params]
