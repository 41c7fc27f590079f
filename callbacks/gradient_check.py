"""Checks a module's gradients against central finite differences (and, for the manual net, autograd).

Relative error per entry is ``|g - fd| / max(|g|, |fd|, floor)``. Central differences in float64
cannot resolve a gradient below their rounding noise, about ``10 * eps_machine * max(|loss|, 1) / eps``
(2e-10 for week 4); ``floor`` is that noise divided by the pass tolerance, so entries that agree to
within the noise pass, and tiny entries are not graded on noise. Each parameter is graded on its worst
entry: pass <= ``pass_tol`` (default 1e-7), OK <= ``ok_tol`` (default 1e-4; typically ReLU kinks), fail
above. The week-7 notebook grades pass < 1e-5 and OK < 1e-3 on a ratio of norms over a parameter,
``||g - fd|| / (||g|| + ||fd||)``, which never exceeds the worst per-entry error here (for entries above the
floor): its bounds passed as ``pass_tol=1e-5, ok_tol=1e-3`` grade at least as strictly as the notebook does.
Parameters are named as in the notebooks and the weights files: W1, b1, W2, ...
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from callbacks.batches import collect_rows, datamodule_loader
from callbacks.tensorboard_dashboard import tensorboard_writer
from callbacks.weights_export import notebook_name
from models.base_net import MLPParameters
from models.console import detail, say
from models.epoch_blocks import epochs_done, every_n
from models.layers import LeakyReLU, ReLU
from models.manual_net import LayerChain, ManualMLP
from models.native_net import NativeMLP
from models.tables import markdown_table, plain_table

Grade = Literal["pass", "OK", "fail"]  # the week-7 notebook's three words
KINKED = ("relu", "leaky_relu")
WORST_ERROR_TAG = "grad_check/worst_relative_error"


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """The check computes on a handful of rows, where intra-op threads only add synchronisation, which on a
    busy machine costs far more than the arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class GradientCheckError(RuntimeError):
    """Raised by :class:`GradientCheck` with ``stop_on_failure`` when a gradient is wrong."""


@dataclass(frozen=True)
class ParameterError:
    reference: str  # what the module's gradient was compared with: "finite differences" or "autograd"
    name: str  # parameter name as in the notebooks and weights files, e.g. "W1", "b1"
    max_rel: float
    mean_rel: float
    entries: int  # entries compared

    def grade(self, pass_tol: float = 1e-7, ok_tol: float = 1e-4) -> Grade:
        return "pass" if self.max_rel <= pass_tol else "OK" if self.max_rel <= ok_tol else "fail"


def net_loss(net: MLPParameters, x: Tensor, y: Tensor) -> Tensor:
    """The loss the module minimises, computed the module's own way."""
    if isinstance(net, ManualMLP):
        return net.forward_loss(x, y)[0]
    return net.loss(net(x), y)


def module_gradients(net: MLPParameters, x: Tensor, y: Tensor) -> list[Tensor]:
    """Hand-derived gradients for the manual net, autograd's for any other, in ``parameters()`` order."""
    if isinstance(net, ManualMLP):
        return net.loss_and_gradients(x, y)[1]
    params = list(net.parameters())
    with torch.enable_grad():
        return list(torch.autograd.grad(net.loss(net(x), y), params))


def autograd_gradients(net: MLPParameters, x: Tensor, y: Tensor) -> list[Tensor]:
    """Autograd through :class:`NativeMLP` on a copy of ``net``'s weights."""
    native = NativeMLP(net.spec).to(dtype=x.dtype).eval()  # eval: no dropout, as in check_gradients
    native.load_state_dict(net.state_dict())
    return module_gradients(native, x, y)


@torch.no_grad()
def kink_free_rows(net: MLPParameters, x: Tensor, margin: float) -> Tensor:
    """Rows whose every hidden ReLU/leaky-ReLU pre-activation (dense and conv) is farther than
    ``margin`` from 0."""
    keep = torch.ones(len(x), dtype=torch.bool)
    if net.spec.activation not in KINKED:
        return keep
    chain = LayerChain(net.spec, net.weights(), net.dropout_generator, net.norm_states())
    chain.set_training(False)
    a = x
    for layer in chain.layers:
        if isinstance(layer, (ReLU, LeakyReLU)):  # a is that activation's pre-activation Z
            keep &= (a.abs() > margin).flatten(1).all(1)
        a = layer.forward(a)
    return keep


def relative_error(a: Tensor, b: Tensor, floor: float) -> Tensor:
    return (a - b).abs() / torch.clamp(torch.maximum(a.abs(), b.abs()), min=floor)


@torch.no_grad()
def finite_differences(net: MLPParameters, x: Tensor, y: Tensor, eps: float, entries: list[Tensor]) -> list[Tensor]:
    """``(L(w + eps) - L(w - eps)) / 2 eps`` at the given flat entries of each parameter."""
    out = []
    for param, index in zip(net.parameters(), entries):
        flat = param.data.view(-1)
        values = torch.empty(len(index), dtype=torch.float64)
        for j, i in enumerate(index.tolist()):
            original = flat[i].item()
            flat[i] = original + eps
            plus = float(net_loss(net, x, y))
            flat[i] = original - eps
            minus = float(net_loss(net, x, y))
            flat[i] = original
            values[j] = (plus - minus) / (2 * eps)
        out.append(values)
    return out


def check_gradients(
    net: MLPParameters,
    x: Tensor,
    y: Tensor,
    eps: float = 1e-5,
    max_entries: int = 64,
    pass_tol: float = 1e-7,
    seed: int = 0,
    finite_differences_too: bool = True,
) -> list[ParameterError]:
    """Errors per parameter of ``net``'s gradients at (x, y), in float64 on CPU, on a copy of ``net``.

    At most ``max_entries`` entries per parameter (chosen with ``seed``) are perturbed; the manual net
    is also compared with autograd on every entry. ``finite_differences_too=False`` keeps only the
    autograd comparison (rows at a ReLU kink, where differences measure neither side's slope).
    """
    net = copy.deepcopy(net).to(device="cpu", dtype=torch.float64).eval()  # eval: no dropout, a fixed loss
    x = x.detach().to("cpu", torch.float64)
    y = y.detach().cpu().to(torch.float64) if torch.is_floating_point(y) else y.detach().cpu()
    names = [notebook_name(name) for name, _ in net.named_parameters()]
    grads = [g.detach().reshape(-1) for g in module_gradients(net, x, y)]
    errors = []
    if finite_differences_too:
        errors += finite_difference_errors(net, x, y, names, grads, eps, max_entries, pass_tol, seed)
    if isinstance(net, ManualMLP):
        tiny = torch.finfo(torch.float64).tiny
        for name, g, auto in zip(names, grads, autograd_gradients(net, x, y)):
            rel = relative_error(g, auto.reshape(-1), tiny)
            errors.append(ParameterError("autograd", name, rel.max().item(), rel.mean().item(), g.numel()))
    return errors


def finite_difference_errors(
    net: MLPParameters,
    x: Tensor,
    y: Tensor,
    names: list[str],
    grads: list[Tensor],
    eps: float,
    max_entries: int,
    pass_tol: float,
    seed: int,
) -> list[ParameterError]:
    """``grads`` against central differences at up to ``max_entries`` entries of each parameter."""
    generator = torch.Generator().manual_seed(seed)
    entries = [
        torch.arange(n) if n <= max_entries else torch.randperm(n, generator=generator)[:max_entries]
        for n in (g.numel() for g in grads)
    ]
    fd = finite_differences(net, x, y, eps, entries)
    noise = 10 * torch.finfo(torch.float64).eps * max(abs(net_loss(net, x, y).item()), 1.0) / eps
    errors = []
    for name, g, index, approx in zip(names, grads, entries, fd):
        rel = relative_error(g[index], approx, noise / pass_tol)
        errors.append(ParameterError("finite differences", name, rel.max().item(), rel.mean().item(), len(index)))
    return errors


CHECK_HEADER = ("reference", "parameter", "entries", "max rel err", "mean rel err", "grade")


def check_rows(errors: list[ParameterError], pass_tol: float = 1e-7, ok_tol: float = 1e-4) -> list[list[object]]:
    """One row per (reference, parameter): what was compared, how far apart, and its grade."""
    return [
        [e.reference, e.name, e.entries, f"{e.max_rel:.2e}", f"{e.mean_rel:.2e}", e.grade(pass_tol, ok_tol)]
        for e in errors
    ]


def format_check(title: str, errors: list[ParameterError], pass_tol: float, ok_tol: float) -> str:
    """The check as an aligned plain table under ``title``, for the terminal."""
    return f"{title}\n{plain_table(CHECK_HEADER, check_rows(errors, pass_tol, ok_tol))}"


def markdown_check(errors: list[ParameterError], pass_tol: float, ok_tol: float) -> str:
    """The check as a Markdown table, which TensorBoard's Text tab renders as a table."""
    return markdown_table(CHECK_HEADER, check_rows(errors, pass_tol, ok_tol))


class GradientCheck(pl.Callback):
    """Grades the module's gradients at fit start and, optionally, every ``every_n_epochs`` epochs.

    Uses the first ``num_examples`` training rows that sit clear of ReLU kinks (rows with a hidden
    pre-activation within ``kink_margin`` of 0 are skipped: finite differences across a kink measure
    neither side's slope). Every rank computes the check, so ``stop_on_failure`` stops all ranks.
    ``pass_tol`` and ``ok_tol`` set the grades (the week-7 notebook's: 1e-5 and 1e-3).
    """

    def __init__(
        self,
        at_fit_start: bool = True,
        every_n_epochs: int = 0,
        num_examples: int = 4,
        eps: float = 1e-5,
        kink_margin: float = 1e-3,
        max_entries_per_parameter: int = 64,
        pass_tol: float = 1e-7,
        ok_tol: float = 1e-4,
        stop_on_failure: bool = False,
        seed: int = 0,
    ) -> None:
        self.at_fit_start = at_fit_start
        self.every_n_epochs = every_n_epochs
        self.num_examples = num_examples
        self.eps = eps
        self.kink_margin = kink_margin
        self.max_entries = max_entries_per_parameter
        self.pass_tol = pass_tol
        self.ok_tol = ok_tol
        self.stop_on_failure = stop_on_failure
        self.seed = seed
        self.last_errors: list[ParameterError] = []
        self.last_grade: Grade | None = None

    def observed_epochs(self, max_epochs: int | None) -> range:
        """Where epoch blocks must end (``models.epoch_blocks.EpochObserver``): the epochs it checks at."""
        return every_n(self.every_n_epochs, max_epochs)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_fit_start:
            self.check(trainer, pl_module, "fit start", epochs_done(trainer, pl_module))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = epochs_done(trainer, pl_module)
        if self.every_n_epochs > 0 and epoch > 0 and epoch % self.every_n_epochs == 0:
            self.check(trainer, pl_module, f"end of epoch {epoch}", epoch)

    def check(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, when: str, epochs_completed: int = 0
    ) -> Grade | None:
        loader = datamodule_loader(trainer, "train")
        if loader is None:
            rank_zero_warn("GradientCheck needs a datamodule to draw examples from; skipped.")
            return None
        net: MLPParameters = pl_module.net
        x, y = collect_rows(loader, 50 * self.num_examples)
        with one_intra_op_thread():
            keep = kink_free_rows(copy.deepcopy(net).double().cpu(), x.double(), self.kink_margin)
        rows = torch.nonzero(keep).flatten()[: self.num_examples]
        with_differences = len(rows) > 0
        if not with_differences:
            # Typical of conv nets: thousands of ReLU pre-activations per example, one of them near 0.
            if not isinstance(net, ManualMLP):
                rank_zero_warn(f"GradientCheck at {when}: all {len(x)} examples sit near a ReLU kink; skipped.")
                return None
            rows = torch.arange(min(self.num_examples, len(x)))
            say(
                f"GradientCheck at {when}: all {len(x)} examples sit near a ReLU kink; checking against "
                "autograd only (finite differences across a kink measure neither side's slope)."
            )
        skipped = int(rows[-1]) + 1 - len(rows)  # kinked rows passed over before the last one used
        x, y = x[rows], y[rows]
        with one_intra_op_thread():
            errors = check_gradients(net, x, y, self.eps, self.max_entries, self.pass_tol, self.seed, with_differences)
        grades = [e.grade(self.pass_tol, self.ok_tol) for e in errors]
        grade: Grade = "fail" if "fail" in grades else "OK" if "OK" in grades else "pass"
        self.last_errors, self.last_grade = errors, grade
        worst = max(errors, key=lambda e: e.max_rel)
        method = (
            f"central differences with eps={self.eps:g} ({skipped} examples near a ReLU kink skipped)"
            if with_differences
            else "autograd only (every example near a ReLU kink)"
        )
        title = f"Gradient check at {when}: {type(pl_module).__name__}, {len(x)} examples in float64, {method}"
        summary = (
            f"Gradient check result: {grade.upper()} (worst {worst.max_rel:.2e} in {worst.name} vs "
            f"{worst.reference}; pass <= {self.pass_tol:g}, OK <= {self.ok_tol:g}, fail above)"
        )
        detail(format_check(title, errors, self.pass_tol, self.ok_tol))
        say(summary)
        self._log(trainer, epochs_completed, title, errors, summary)
        if grade == "fail":
            message = (
                f"{summary}. The module's gradient for {worst.name} disagrees with {worst.reference}: "
                "check the hand-derived formulas for that layer (models/layers/)."
            )
            if self.stop_on_failure:
                raise GradientCheckError(message)
            rank_zero_warn(message)
        return grade

    def _log(
        self, trainer: pl.Trainer, epochs_completed: int, title: str, errors: list[ParameterError], summary: str
    ) -> None:
        """One Text table per check and one scalar, the worst relative error, keyed by epochs completed
        (0 at fit start): no chart per parameter."""
        writer = tensorboard_writer(trainer)
        if writer is None:
            return
        worst = max((e.max_rel for e in errors), default=0.0)
        writer.add_scalar(WORST_ERROR_TAG, worst, epochs_completed)
        writer.add_text(
            "grad_check/report",
            f"{title}\n\n{markdown_check(errors, self.pass_tol, self.ok_tol)}\n\n{summary}",
            epochs_completed,
        )
