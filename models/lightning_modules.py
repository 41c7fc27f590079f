"""The two LightningModules: one trains the native net with autograd, one the hand-derived net.

They share everything in :class:`MLPModule` and differ only in how a loss's gradients reach ``param.grad``. The
module owns its pieces as objects: the net, the per-stage metrics (:class:`models.metrics.StageMetrics`), the
epoch-block plan (:class:`models.epoch_blocks.EpochBlocks`), the divergence rule; the update loop
(:func:`models.engine.run_updates`) is handed what it uses.

Epochs are notebook epochs everywhere (:mod:`models.epoch_blocks`): ``epochs_done`` counts them, ``updates_done``
counts optimiser updates, and both are logged as ``epoch`` and ``step`` at every epoch end, where Lightning's
checkpoint names and the epoch-keyed logger read them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix

from datamodules.tensor_loader import TensorBatchLoader
from models.base_net import MLPParameters
from models.divergence import ADVICE, REFERENCE_ROWS, DivergenceError, DivergenceRule
from models.engine import (
    NumpyPath,
    epoch_chunks,
    is_tiny,
    one_thread,
    row_chunks,
    run_updates,
    unequal_update_counts,
)
from models.epoch_blocks import EpochBlocks, EpochLabel, EpochObserver, EpochsPerStep, check_epochs_per_step
from models.grad_sync import all_reduce_mean_
from models.layers.heads import output_activation
from models.manual_net import ManualMLP
from models.metrics import StageMetrics, grouped_metrics
from models.native_net import NativeMLP
from models.optim import group_settings, keep_configured_settings
from models.report import GENERAL_ADVICE
from models.schedules import (
    ScheduleError,
    SchedulerInterval,
    build_lr_scheduler,
    check_rows_per_update,
    planned_updates,
)
from models.spec import MLPSpec


class MLPModule(pl.LightningModule):
    """The shared base. Subclasses only say how a loss and its gradients are made (:meth:`build_net`,
    :meth:`loss_and_logits` and, for the hand-derived net, :meth:`backward`).

    Both modules use manual optimisation, so a training step can make many updates (``rows_per_update``, epoch
    blocks) and both step their learning-rate schedule the same way.
    """

    net: MLPParameters
    display_name = "mlp"
    hand_derived = False  # whether the NumPy path of models.engine may run this module's updates

    def __init__(
        self,
        net: MLPSpec,
        optimizer: OptimizerCallable | None = None,
        rows_per_update: int | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        lr_scheduler_interval: SchedulerInterval = "step",
        epochs_per_step: EpochsPerStep = 1,
        divergence_loss_growth: float = 1e3,
        divergence_max_weight: float = 1e6,
    ) -> None:
        """``optimizer`` builds a torch.optim optimizer from the parameters; default SGD(lr=0.1).

        ``lr_scheduler`` (optional) builds a torch.optim.lr_scheduler from the optimizer, stepped after every
        optimiser update (``lr_scheduler_interval="step"``) or every epoch (``"epoch"``). OneCycleLR without
        ``total_steps`` is given the run's exact number of updates.

        ``rows_per_update`` splits each training batch into consecutive chunks of that many rows and makes one
        optimiser update per chunk, in order: a batch of 400 rows with ``rows_per_update=1`` gives exactly the
        updates of batch size 1, without Lightning's per-step cost on each of them. ``None`` makes one update per
        batch.

        ``epochs_per_step`` runs that many epochs in one Lightning epoch when an epoch is one batch (epoch blocks,
        :mod:`models.epoch_blocks`): the same updates in the same data order, with Lightning's per-epoch work
        (validation, checkpoints, callbacks) once per block. ``"auto"`` makes blocks of ``ceil(max_epochs / 50)``.

        ``divergence_loss_growth`` and ``divergence_max_weight``: when a finite run counts as diverged
        (:class:`models.divergence.DivergenceRule`).
        """
        super().__init__()
        check_rows_per_update(rows_per_update)
        check_epochs_per_step(epochs_per_step)
        if isinstance(net, dict):  # as stored in a checkpoint's hyper-parameters
            net = MLPSpec(**net)
        # The optimizer comes from the config again on reload; a plain dict keeps checkpoints loadable
        # with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.hparams["net"] = asdict(net)
        # The CLI records the class when it builds the module; record it too when Python does, so
        # `train.py test/predict --ckpt_path` can rebuild a module trained by a plain Trainer.
        self.hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        self.automatic_optimization = False
        self.spec = net
        self.net = self.build_net(net)
        self.metrics = StageMetrics(net)
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_scheduler_interval = lr_scheduler_interval
        self.rows_per_update = rows_per_update
        self.blocks = EpochBlocks(epochs_per_step)
        self.divergence = DivergenceRule(divergence_loss_growth, divergence_max_weight)
        self.initial_loss: float | None = None  # the divergence rule's reference, kept in checkpoints
        # The loss of every optimiser update made by the latest training step (read by the dashboard), and the
        # updates made since the fit began (saved in checkpoints).
        self.update_losses = torch.empty(0)
        self.updates_done = 0
        self.numpy_path: NumpyPath | None = None
        self.lean = False
        self.restore_threads: Callable[[], None] | None = None  # set while a tiny net runs on one thread
        self.collapse_advice = GENERAL_ADVICE  # what the test report suggests if every prediction is one class
        self.show_test_report = True  # compare shows both modules' side by side instead

    @property
    def epochs_done(self) -> int:
        """Notebook epochs trained so far, whatever the block size."""
        return self.blocks.epochs_done

    @property
    def test_confusion(self) -> MulticlassConfusionMatrix | None:
        """The test confusion matrix (classifiers), which the dashboard and ``compare`` read before the module's
        own report resets it."""
        return self.metrics.test_confusion

    # ---- what the two modules do differently ---------------------------------------------
    def build_net(self, spec: MLPSpec) -> MLPParameters:
        raise NotImplementedError

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def gradient_step(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Loss and logits of one update, with the gradients left in ``param.grad``."""
        loss, z = self.loss_and_logits(x, target)
        self.manual_backward(loss)
        return loss, z

    # ---- setup ---------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Make float64 runs start from the exact float64 initial weights.

        The CLI builds the module in float32 before the Trainer casts it to float64, which would leave
        the initial weights rounded to float32. Lightning calls this hook inside the precision's
        default-dtype context, so an untouched float32 net is re-initialised exactly in float64.
        """
        wanted = torch.get_default_dtype()
        if wanted == torch.float64 and self.dtype != wanted and self.net.is_at_initial_values():
            self.net.to(wanted)
            self.net.reset_parameters()

    def setup(self, stage: str) -> None:
        """Give every metric state tensors of its own in this process.

        ``ddp_spawn`` on CPU pickles the module into shared memory; Lightning un-shares parameters and
        buffers but not torchmetrics states, so without this all ranks would count into one tensor.
        """
        for metric in self.metrics.modules():
            if isinstance(metric, Metric):
                metric.reset()
        self.restore_threads = one_thread(isinstance(self.trainer.accelerator, CPUAccelerator) and is_tiny(self.net))

    def teardown(self, stage: str) -> None:
        if self.restore_threads is not None:
            self.restore_threads()
            self.restore_threads = None

    def configure_callbacks(self) -> list[pl.Callback]:
        """The progress bar's notebook-epoch label, once per trainer (a test after fit asks again)."""
        if any(isinstance(callback, EpochLabel) for callback in self.trainer.callbacks):
            return []
        return [EpochLabel()]

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """What a resumed run needs beyond the weights: counts, the dropout masks' generator, the divergence
        rule's reference."""
        checkpoint["updates_done"] = self.updates_done
        checkpoint["dropout_generator_state"] = self.net.dropout_generator.get_state()
        checkpoint.update(self.blocks.state_dict())
        checkpoint["configured_optimizer"] = group_settings(self.build_optimizer())  # what a resume compares with
        if self.initial_loss is not None:
            checkpoint["initial_loss"] = self.initial_loss

    def on_load_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """Counts and generators from the checkpoint; the optimiser's settings stay the configured ones."""
        saved_optimizers = checkpoint.get("optimizer_states") or []
        if saved_optimizers:
            keep_configured_settings(
                self.build_optimizer(), saved_optimizers[0], checkpoint.get("configured_optimizer")
            )
        self.updates_done = int(checkpoint.get("updates_done", 0))
        if "dropout_generator_state" in checkpoint:
            self.net.dropout_generator.set_state(checkpoint["dropout_generator_state"])
        self.blocks.load_state_dict(checkpoint)
        self.initial_loss = checkpoint.get("initial_loss")

    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (logits)."""
        return self.net(x)

    def as_model_dtype(self, batch: object) -> object:
        """Floating inputs in the model's dtype: data is held exactly (float64), models may be float32."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(t.to(self.dtype) if torch.is_floating_point(t) else t for t in batch)
        return batch.to(self.dtype) if torch.is_floating_point(batch) else batch

    # ---- optimisation --------------------------------------------------------------------
    def build_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is None:
            return torch.optim.SGD(self.parameters(), lr=0.1)
        return self.optimizer_factory(self.parameters())

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, object]:
        optimizer = self.build_optimizer()
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = build_lr_scheduler(
            self.lr_scheduler_factory, optimizer, lambda: planned_updates(self.trainer, self.rows_per_update)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.lr_scheduler_interval},
        }

    def step_lr_schedule(self, interval: SchedulerInterval) -> None:
        """Advance the schedule, as manual optimisation requires of the module."""
        if self.lr_scheduler_factory and interval == self.lr_scheduler_interval:
            with warnings.catch_warnings():
                # The NumPy path updates the parameters without optimizer.step(), which torch's scheduler
                # takes for a schedule stepped before its optimiser.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.lr_schedulers().step()

    # ---- training ------------------------------------------------------------------------
    def on_train_start(self) -> None:
        """Refuse a DDP block size that gives ranks different numbers of updates; plan this fit's epoch blocks;
        choose the update path."""
        trainer = self.trainer
        loader = trainer.train_dataloader
        if self.rows_per_update is not None and trainer.world_size > 1 and isinstance(loader, TensorBatchLoader):
            problem = unequal_update_counts(
                [loader.batch_rows(rank, trainer.world_size) for rank in range(trainer.world_size)],
                self.rows_per_update,
            )
            if problem:
                raise ValueError(problem)
        observers = [c for c in trainer.callbacks if isinstance(c, EpochObserver)]
        observed = [epoch for c in observers for epoch in c.observed_epochs(trainer.max_epochs)]
        self.blocks.start(trainer, self.why_epochs_cannot_be_grouped(), observed)
        self.measure_initial_loss()
        self.refuse_extending_a_one_cycle()
        optimizer = self.optimizers().optimizer
        # one process without mixed precision: a block's updates may skip Lightning's optimizer wrapper
        self.lean = trainer.world_size == 1 and not str(trainer.precision).endswith("mixed")
        applies = NumpyPath.applies(self.hand_derived, self.net, optimizer, self.lean)
        self.numpy_path = NumpyPath(self.net, optimizer) if applies else None

    def why_epochs_cannot_be_grouped(self) -> str | None:
        trainer = self.trainer
        loader = trainer.train_dataloader
        if trainer.world_size > 1:
            return f"the run uses {trainer.world_size} processes (epoch blocks need one)"
        if not isinstance(loader, TensorBatchLoader):
            return "the training data is not served by a TensorBatchLoader"
        if len(loader) != 1 or trainer.num_training_batches != 1:
            return (
                f"an epoch is {len(loader)} batches of data.batch_size={loader.batch_size}; set data.batch_size to at "
                f"least the {loader.n} training rows (and model.rows_per_update for smaller updates)"
            )
        return None

    def refuse_extending_a_one_cycle(self) -> None:
        """A resumed OneCycleLR spans the updates its first run planned; a longer run would step past its end."""
        scheduler = self.lr_schedulers() if self.lr_scheduler_factory else None
        if not isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) or self.updates_done == 0:
            return
        needed = planned_updates(self.trainer, self.rows_per_update)
        if needed > scheduler.total_steps:
            raise ScheduleError(
                f"this run would make {needed} updates in all, but the resumed OneCycleLR schedule spans "
                f"{scheduler.total_steps} (the run it was planned for): a one-cycle schedule cannot be extended. "
                "Resume with that run's trainer.max_epochs, or start a new run with the longer one."
            )

    def on_train_epoch_start(self) -> None:
        """Tell the loader which notebook epochs this Lightning epoch trains (each in its own seeded order)."""
        loader = self.trainer.train_dataloader
        if isinstance(loader, TensorBatchLoader):
            loader.set_epochs(self.blocks.epochs_of(self.current_epoch))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, target = self.as_model_dtype(batch)
        epochs = len(self.blocks.epochs_of(self.current_epoch)) if self.blocks.plan else 1
        in_block = bool(self.blocks.plan)
        if in_block:
            chunks = epoch_chunks([x.shape[0] // epochs], epochs, self.rows_per_update)
        else:
            chunks = [row_chunks(x.shape[0], self.rows_per_update)]

        def after_update(ends_epoch: bool) -> None:
            self.step_lr_schedule("step")
            if in_block and ends_epoch:
                self.step_lr_schedule("epoch")

        losses, logits = run_updates(
            x, target, chunks, self.optimizers(), self.gradient_step, after_update, self.lean, self.numpy_path
        )
        self.update_losses = losses
        self.stop_if_diverged(losses, epochs)
        self.updates_done += len(losses)
        if in_block:
            return self.log_block(losses, logits, target, epochs)
        loss = losses.mean()
        self.metrics.update("train", loss, logits, target)
        every = self.trainer.log_every_n_steps  # 0 when logging is off (barebones Trainer)
        if every and self.global_step % every == 0:
            # each self.log costs Lightning ~ms of bookkeeping; every update's loss reaches TensorBoard through
            # TensorBoardDashboard
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=x.shape[0])
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.end_of_epoch()
        return loss

    def end_of_epoch(self) -> None:
        """After an epoch's last batch: its metrics, at this epoch (so callbacks at epoch end see them), the growth
        check, and the per-epoch schedule, as if between this epoch and the next."""
        values = self.metrics.compute("train")
        if values:
            self.check_loss_growth(np.array([float(values["train/loss"])]))
        self.blocks.epochs_done += 1
        if values:
            self.log_epoch_values("train", values)
        self.step_lr_schedule("epoch")

    def log_block(self, losses: Tensor, logits: Tensor, target: Tensor, epochs: int) -> Tensor:
        """Each epoch of a block goes to the loggers at that epoch; the block's last epoch is also handed to
        ``self.log`` (not to the loggers) for the progress bar, checkpoint monitors and callbacks."""
        values = {"train/loss": losses.reshape(epochs, -1).mean(1)}
        per_epoch_logits = logits.reshape(epochs, -1, logits.shape[-1])
        values.update(grouped_metrics(self.spec, per_epoch_logits, split_epochs(target, epochs), "train/"))
        rows = torch.stack([v.double() for v in values.values()], 1).cpu().tolist()  # one device sync per block
        self.check_loss_growth(np.array([row[0] for row in rows]))
        updates_per_epoch = len(losses) // epochs
        first_update = self.updates_done - len(losses)
        for i, row in enumerate(rows):
            self.blocks.epochs_done += 1
            # as every epoch's values are logged: at the epoch, with the optimiser updates done by its end as step
            updates = first_update + (i + 1) * updates_per_epoch
            for logger in self.loggers:
                logger.log_metrics({**dict(zip(values, row)), "epoch": self.epochs_done}, step=updates)
        for tag, value in values.items():
            bar = tag == "train/loss"
            self.log(tag, value[-1], on_step=False, on_epoch=True, logger=False, prog_bar=bar, batch_size=1)
        self.log_position()
        return values["train/loss"].mean()

    def stop_if_diverged(self, losses: Tensor, epochs: int) -> None:
        """A non-finite loss or weight, or a weight past the bound, stops the run at once, naming where and what
        to change. ``epochs``: how many equal epochs the step holds, to name the epoch of an update."""
        finite = torch.isfinite(losses)
        largest = torch.stack([p.detach().abs().max() for p in self.net.parameters()]).max()
        loss_finite = bool(finite.all())  # one device sync for the losses, one for the weights
        largest = float(largest)
        bound = self.divergence.max_abs_weight
        if loss_finite and np.isfinite(largest) and not (bound and largest > bound):
            return
        first = len(finite) - 1 if loss_finite else int((~finite).nonzero()[0])
        update, epoch = self.updates_done + first + 1, self.epochs_done + 1 + first * epochs // len(finite)
        if not loss_finite:
            where = f"the loss became non-finite (NaN or inf) at update {update}"
        elif not np.isfinite(largest):  # the weights are checked once per training step, after its last update
            where = f"the weights became non-finite (NaN or inf) by update {update}"
        else:
            where = f"{self.divergence.describe_weight(largest)} by update {update}"
        self.raise_divergence(f"{where}, in epoch {epoch} of training", update, epoch)

    @torch.no_grad()
    def measure_initial_loss(self) -> None:
        """The divergence rule's reference: the loss of the weights training starts from, on the first training
        rows, in eval mode (no dropout mask is drawn, so the run's masks stay as they would be)."""
        loader = self.trainer.train_dataloader
        if self.initial_loss is not None or not isinstance(loader, TensorBatchLoader):
            return
        x, target = self.as_model_dtype(tuple(t[:REFERENCE_ROWS].to(self.device) for t in loader.tensors[:2]))
        training = self.net.training
        self.net.eval()
        try:
            loss, _ = self.loss_and_logits(x, target)
        finally:
            self.net.train(training)
        self.initial_loss = float(loss)

    def check_loss_growth(self, epoch_losses: np.ndarray) -> None:
        """The divergence rule's growth bound, against the initial loss."""
        if self.initial_loss is None:
            return
        grown = self.divergence.grown(epoch_losses, self.initial_loss)
        if grown.any():
            k = int(np.argmax(grown))
            epoch = self.epochs_done + k + 1
            what = self.divergence.describe_growth(float(epoch_losses[k]), self.initial_loss)
            self.raise_divergence(f"{what} in epoch {epoch} of training", None, epoch)

    def raise_divergence(self, where: str, update: int | None, epoch: int) -> None:
        lr = self.optimizers().optimizer.param_groups[0]["lr"]
        raise DivergenceError(
            f"{self.display_name} diverged: {where}, with learning rate {lr:g}. {ADVICE}; nothing after this "
            "point was trained.",
            update,
            epoch,
        )

    def on_train_epoch_end(self) -> None:
        """A run of blocks stops once ``max_epochs`` notebook epochs ran."""
        if self.blocks.finished(self.trainer):
            self.trainer.should_stop = True  # trainer.max_epochs counts notebook epochs, not blocks

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = self.as_model_dtype(batch)
        loss, z = self.loss_and_logits(x, target)
        self.metrics.update(stage, loss, z, target)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        values = self.metrics.compute("val")
        # Lightning discards the sanity check's values; not logging them also keeps its record of each key's
        # arguments free for the fit's own validation
        if values and not self.trainer.sanity_checking:
            self.log_epoch_values("val", values)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        values = self.metrics.compute("test")
        if not values:
            return
        self.log_epoch_values("test", values)
        report = self.metrics.test_report(values, self.display_name, self.collapse_advice, self.show_test_report)
        experiment = getattr(self.logger, "experiment", None)
        if report and self.trainer.is_global_zero and hasattr(experiment, "add_text"):
            experiment.add_text("test/report", f"```\n{report}\n```", global_step=self.epochs_done)

    def log_epoch_values(self, stage: str, values: dict[str, Tensor]) -> None:
        """One stage's epoch values, at this notebook epoch.

        The values are global already (torchmetrics synced its states over the processes in compute()); sync_dist
        says so to Lightning, which under DDP warns about epoch values it was not told to sync, and its mean of
        the processes' identical values is the value itself.
        """
        loss = values.pop(f"{stage}/loss")
        self.log_dict(values, sync_dist=True)
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True)
        self.log_position()

    def log_position(self) -> None:
        """``epoch`` (notebook epochs done) and ``step`` (optimiser updates): what Lightning names checkpoints by
        and what the epoch-keyed logger keys this epoch's values by."""
        # every rank holds the same counts: a sync only tells Lightning so, which it wants under DDP alone
        position = {"epoch": float(self.epochs_done), "step": float(self.updates_done)}
        self.log_dict(position, sync_dist=self.trainer.world_size > 1)

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        batch = self.as_model_dtype(batch)
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return output_activation(self.spec.head, self.net(x))


def split_epochs(target: Tensor, epochs: int) -> Tensor:
    """(epochs * rows, ...) -> (epochs, rows, ...)."""
    return target.reshape(epochs, -1, *target.shape[1:])


class NativeModule(MLPModule):
    """Autograd differentiates :class:`NativeMLP`."""

    display_name = "native (autograd)"

    def build_net(self, spec: MLPSpec) -> NativeMLP:
        return NativeMLP(spec)

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        z = self.net(x)
        return self.net.loss(z, target), z


class ManualModule(MLPModule):
    """``backward`` writes the hand-derived gradients into ``param.grad``.

    The update runs under ``torch.no_grad()``: no graph is built, and Lightning's DDP strategy then
    leaves the DDP reducer alone. Gradients are averaged across ranks by :meth:`backward` itself,
    since DDP's own all-reduce hooks fire only through autograd.
    """

    display_name = "manual (hand-derived)"
    hand_derived = True

    def build_net(self, spec: MLPSpec) -> ManualMLP:
        return ManualMLP(spec)

    def loss_and_logits(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.forward_loss(x, target)

    @torch.no_grad()
    def gradient_step(self, x: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return super().gradient_step(x, target)

    def backward(self, loss: Tensor, *args: object, **kwargs: object) -> None:
        """Fill ``param.grad`` with the hand-derived gradients; average them across DDP ranks."""
        grads = self.net.backward()
        for param, grad in zip(self.net.parameters(), grads):
            param.grad = grad  # a fresh tensor of the parameter's shape: no copy needed
        all_reduce_mean_(grads)
