"""W4 (recorded only): one update of the LeNet-style net on 128 rows of 28x28 images, float32.

The hand-derived gradients (im2col convolution, models/layers/conv.py) against autograd through the
native net and through a plain ``nn.Sequential`` LeNet: forward, loss and every parameter's gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.timing import interleaved
from models.manual_net import ManualMLP
from models.native_net import NativeMLP
from models.spec import MLPSpec

ROWS = 128
UPDATES_PER_TIMING = 20
SPEC = MLPSpec.lenet()


def plain_lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(784, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def run(repeats: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, 784, generator=generator)
    y = torch.randint(0, 10, (ROWS,), generator=generator)
    manual, native, plain = ManualMLP(SPEC), NativeMLP(SPEC), plain_lenet()
    images = x.reshape(ROWS, 1, 28, 28)

    @torch.no_grad()
    def hand_derived() -> list[torch.Tensor]:
        return manual.loss_and_gradients(x, y)[1]

    def autograd_native() -> None:
        native.zero_grad()
        native.loss(native(x), y).backward()

    def autograd_plain() -> None:
        plain.zero_grad()
        F.cross_entropy(plain(images), y).backward()

    paths = {"hand_derived": hand_derived, "autograd_native": autograd_native, "autograd_plain": autograd_plain}
    for step in paths.values():  # warm-up: allocator and kernels
        step()

    def repeated(step):
        return lambda: [step() for _ in range(UPDATES_PER_TIMING)]

    timings = interleaved({name: repeated(step) for name, step in paths.items()}, repeats)
    per_update_ms = {name: 1000 * t.median / UPDATES_PER_TIMING for name, t in timings.items()}
    autograd_native()
    grads = hand_derived()
    max_rel = max(float((g - p.grad).abs().max() / p.grad.abs().max()) for g, p in zip(grads, native.parameters()))
    return {
        "timings": timings,
        "per_update_ms": per_update_ms,
        "ratios": {
            "hand_derived / autograd_plain": per_update_ms["hand_derived"] / per_update_ms["autograd_plain"],
            "autograd_native / autograd_plain": per_update_ms["autograd_native"] / per_update_ms["autograd_plain"],
        },
        "max_rel_grad_diff_float32": max_rel,
    }
