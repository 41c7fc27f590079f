"""The two LightningModules: one trains the native net with autograd, one the hand-derived net.

They share everything (:class:`MLPModule`: metrics and the report from :mod:`models.stage_metrics`,
many updates per step from :mod:`models.engine`, epoch blocks from :mod:`models.epoch_blocks`) and
differ only in how a loss's gradients reach ``param.grad``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
)

from models.base_net import MLPParameters
from models.engine import one_thread_for_tiny_nets, run_updates, unequal_update_counts
from models.epoch_blocks import (
    EpochBlocks,
    EpochsPerStep,
    check_epochs_per_step,
)
from models.grad_sync import all_reduce_mean_
from models.layers.heads import output_activation
from models.manual_net import ManualMLP
from models.native_net import NativeMLP
from models.report import GENERAL_ADVICE
from models.schedules import (
    ScheduleError,
    SchedulerInterval,
    build_lr_scheduler,
    check_rows_per_update,
    planned_updates,
)
from models.spec import MLPSpec
from models.stage_metrics import StageMetrics, stage_metrics


class DivergenceError(ValueError):
    """Training produced a non-finite loss or weight: a setting to change, not a bug.

    ``update`` and ``epoch`` (1-based) say where, so ``compare`` can tell whether both modules diverged at the
    same update (defaults keep the error picklable from its message alone)."""

    def __init__(self, message: str, update: int | None = None, epoch: int | None = None) -> None:
        super().__init__(message)
        self.update, self.epoch = update, epoch


class MLPModule(StageMetrics, EpochBlocks, pl.LightningModule):
    """The shared base: setup, checkpoints, optimisers and schedules, the training step through
    :mod:`models.engine`. Subclasses only say how a loss and its gradients are made
    (:meth:`loss_and_logits` and, for the hand-derived net, :meth:`backward`).

    Both modules use manual optimisation, so a training step can make many updates
    (``rows_per_update``) and both step their learning-rate schedule the same way.
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
    ) -> None:
        """``optimizer`` builds a torch.optim optimizer from the parameters; default SGD(lr=0.1).

        ``lr_scheduler`` (optional) builds a torch.optim.lr_scheduler from the optimizer, stepped after
        every optimiser update (``lr_scheduler_interval="step"``) or every epoch (``"epoch"``).
        OneCycleLR without ``total_steps`` is given the run's exact number of updates.

        ``rows_per_update`` splits each training batch into consecutive chunks of that many rows and
        makes one optimiser update per chunk, in order: a batch of 400 rows with ``rows_per_update=1``
        gives exactly the updates of batch size 1, without Lightning's per-step cost on each of them.
        ``None`` makes one update per batch.

        ``epochs_per_step`` runs that many epochs in one Lightning training step when an epoch is one
        batch (see :mod:`models.epoch_blocks`): the same updates in the same data order, but
        Lightning's per-epoch work (validation, checkpoints, callbacks) happens once per block of
        epochs. ``"auto"`` makes blocks of ``ceil(max_epochs / 50)`` epochs, or 1 when epochs are not
        one batch. ``trainer.max_epochs`` still counts epochs, and every epoch's training metrics are
        logged at that epoch.
        """
        super().__init__()
        check_rows_per_update(rows_per_update)
        self.rows_per_update = rows_per_update
        check_epochs_per_step(epochs_per_step)
        self.epochs_per_step = epochs_per_step
        # This fit's epochs per step (resolved at train start), the rows of one epoch, the epochs
        # finished so far, and the epochs per step of a checkpoint being resumed.
        self.block_epochs = 1
        self.epoch_rows = 0
        self.epochs_done = 0
        self.resumed_block_epochs: int | None = None
        self.automatic_optimization = False
        # The loss of every optimiser update made by the latest training step (read by loggers), and
        # the updates made since the fit began (saved in checkpoints).
        self.update_losses = torch.empty(0)
        self.updates_done = 0
        if isinstance(net, dict):  # as stored in a checkpoint's hyper-parameters
            net = MLPSpec(**net)
        # The optimizer comes from the config again on reload; a plain dict keeps checkpoints loadable
        # with torch.load(weights_only=True).
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.hparams["net"] = asdict(net)
        # The CLI records the class when it builds the module; record it too when Python does, so
        # `train.py test/predict --ckpt_path` can rebuild a module trained by a plain Trainer.
        self.hparams.setdefault("_class_path", f"{type(self).__module__}.{type(self).__qualname__}")
        self.spec = net
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.lr_scheduler_interval = lr_scheduler_interval
        self.net = self.build_net(net)
        self.train_metrics = stage_metrics(net, "train")
        self.val_metrics = stage_metrics(net, "val")
        self.test_metrics = stage_metrics(net, "test")
        # Per-epoch mean loss per stage, weighted by rows; torchmetrics syncs it over ranks.
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        self.test_confusion = MulticlassConfusionMatrix(net.num_classes) if net.is_classifier else None
        self.restore_threads: Callable[[], None] | None = None  # set while a tiny net runs on one thread
        self.collapse_advice = GENERAL_ADVICE  # what the test report suggests if every prediction is one class

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
        for metric in self.modules():
            if isinstance(metric, Metric):
                metric.reset()
        self.restore_threads = one_thread_for_tiny_nets(self)

    def teardown(self, stage: str) -> None:
        if self.restore_threads is not None:
            self.restore_threads()
            self.restore_threads = None

    def on_save_checkpoint(self, checkpoint: dict[str, object]) -> None:
        """What a resumed run needs beyond the weights: the update count and the dropout masks' generator."""
        checkpoint["updates_done"] = self.updates_done
        checkpoint["dropout_generator_state"] = self.net.dropout_generator.get_state()
        checkpoint["epochs_per_step"] = self.block_epochs
        checkpoint["notebook_epochs_done"] = self.epochs_done

    def on_load_checkpoint(self, checkpoint: dict[str, object]) -> None:
        self.updates_done = int(checkpoint.get("updates_done", 0))
        if "dropout_generator_state" in checkpoint:
            self.net.dropout_generator.set_state(checkpoint["dropout_generator_state"])
        self.resumed_block_epochs = int(checkpoint.get("epochs_per_step", 1))
        self.epochs_done = int(checkpoint.get("notebook_epochs_done", 0))

    def forward(self, x: Tensor) -> Tensor:
        """Output pre-activations (logits)."""
        return self.net(x)

    def as_model_dtype(self, batch: object) -> object:
        """Floating inputs in the model's dtype: data is held exactly (float64), models may be float32."""
        if isinstance(batch, (tuple, list)):
            return type(batch)(t.to(self.dtype) if torch.is_floating_point(t) else t for t in batch)
        return batch.to(self.dtype) if torch.is_floating_point(batch) else batch

    # ---- optimisation --------------------------------------------------------------------
    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, object]:
        if self.optimizer_factory is None:
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        else:
            optimizer = self.optimizer_factory(self.parameters())
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

    def on_train_start(self) -> None:
        """Refuse a DDP block size that would give ranks different numbers of updates; choose this
        fit's epochs per step."""
        loader = self.trainer.train_dataloader
        world_size = self.trainer.world_size
        if self.rows_per_update is not None and world_size > 1 and hasattr(loader, "batch_rows"):
            rows = [loader.batch_rows(rank, world_size) for rank in range(world_size)]
            problem = unequal_update_counts(rows, self.rows_per_update)
            if problem:
                raise ValueError(problem)
        self._start_epoch_blocks()
        self.refuse_extending_a_one_cycle()

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
        """Tell the loader which epoch (or block of epochs) begins, so it serves that epoch's seeded order;
        group its epochs each time, as Lightning may reload the loader between epochs."""
        loader = self.trainer.train_dataloader
        if self.block_epochs > 1:
            loader.group_epochs(self.block_epochs, self.notebook_max_epochs())
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.current_epoch)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, target = self.as_model_dtype(batch)
        if self.block_epochs > 1:
            return self._training_block(x, target)
        self.update_losses, logits = run_updates(self, x, target)
        self.stop_if_diverged()
        self.updates_done += len(self.update_losses)
        loss = self.update_losses.mean()
        self._update_and_log("train", loss, logits, target, on_step=True)
        return loss

    def stop_if_diverged(self, epochs_in_step: int = 1) -> None:
        """A non-finite loss or weight stops the run at once, naming where and what to change.

        ``epochs_in_step``: a step of epoch blocks holds several epochs of equally many updates, so the epoch of
        an update is counted from the epochs done before the step, not from Lightning's epoch (which counts blocks).
        """
        finite = torch.isfinite(self.update_losses)
        weights_finite = torch.stack([torch.isfinite(p).all() for p in self.net.parameters()]).all()
        loss_finite = bool(finite.all())  # one device sync for the losses, one for the weights
        if loss_finite and bool(weights_finite):
            return
        first = len(finite) - 1 if loss_finite else int((~finite).nonzero()[0])
        lr = self.optimizers().optimizer.param_groups[0]["lr"]
        update, epoch = self.updates_done + first + 1, self.epochs_done + 1 + first * epochs_in_step // len(finite)
        raise DivergenceError(
            f"{self.display_name} diverged: the {'weights' if loss_finite else 'loss'} became "
            f"non-finite (NaN or inf) at update {update}, in epoch {epoch} "
            f"of training, with learning rate {lr:g}. Lower model.init_args.optimizer.init_args.lr, normalise "
            "the features (data.normalize), or clip the gradients; nothing after this point was trained.",
            update,
            epoch,
        )

    # ---- epoch ends and evaluation (metrics: models/stage_metrics.py) ------------------------
    def on_train_epoch_end(self) -> None:
        """Inside epoch blocks the engine stepped the per-epoch schedule already, after each epoch."""
        self._log_epoch_metrics("train")
        if self.block_epochs == 1:
            self.step_lr_schedule("epoch")
            self.epochs_done = self.trainer.current_epoch + 1
            return
        limit = self.notebook_max_epochs()
        if limit is not None and self.epochs_done >= limit:
            self.trainer.should_stop = True  # trainer.max_epochs counts epochs, not blocks

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, target = self.as_model_dtype(batch)
        loss, z = self.loss_and_logits(x, target)
        self._update_and_log(stage, loss, z, target, on_step=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._evaluate(batch, "test")

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        batch = self.as_model_dtype(batch)
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return output_activation(self.spec.head, self.net(x))


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
