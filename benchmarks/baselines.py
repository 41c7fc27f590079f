"""Plain loops that do what the notebooks do: the baselines every benchmark ratio is measured against.

The tests also use them as oracles: the week-4 NumPy loop is the notebook's recipe restated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def week04_numpy_sgd(
    x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 0.1, seed: int = 0, hidden: tuple[int, int] = (3, 3)
):
    """Week-4 from-scratch loop: 2-h1-h2-2 sigmoid (2-3-3-2 by default), no bias, N(0, 0.2) init, one
    update per example in ``default_rng(seed).permutation(n)`` order per epoch. Returns the three
    (fan_in, fan_out) weights and every step's loss."""
    init = np.random.default_rng(seed)
    w = [init.normal(0, 0.2, size=s) for s in ((2, hidden[0]), hidden, (hidden[1], 2))]
    order_rng = np.random.default_rng(seed)
    eye = np.eye(2)
    losses = []
    for _ in range(epochs):
        for i in order_rng.permutation(len(x)):
            a0 = x[i : i + 1]  # (1, 2)
            a1 = 1 / (1 + np.exp(-np.clip(a0 @ w[0], -50, 50)))  # (1, 3)
            a2 = 1 / (1 + np.exp(-np.clip(a1 @ w[1], -50, 50)))  # (1, 3)
            z3 = a2 @ w[2]  # (1, 2)
            e = np.exp(z3 - z3.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            t = eye[y[i : i + 1]]
            losses.append(float(-np.sum(t * np.log(np.clip(p, 1e-12, 1.0)))))
            d3 = p - t
            d2 = (d3 @ w[2].T) * a2 * (1 - a2)
            d1 = (d2 @ w[1].T) * a1 * (1 - a1)
            w[2] -= lr * a2.T @ d3
            w[1] -= lr * a1.T @ d2
            w[0] -= lr * a0.T @ d1
    return w, losses


def week04_torch_sgd(x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 0.1, seed: int = 0):
    """Week-4 PyTorch section: nn.Linear layers without bias, CrossEntropyLoss, batch 1, autograd, float64.
    Starts from the same weights and order as :func:`week04_numpy_sgd`."""
    init = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(2, 3, bias=False),
        nn.Sigmoid(),
        nn.Linear(3, 3, bias=False),
        nn.Sigmoid(),
        nn.Linear(3, 2, bias=False),
    ).double()
    with torch.no_grad():
        for layer, shape in zip((model[0], model[2], model[4]), ((2, 3), (3, 3), (3, 2))):
            layer.weight.copy_(torch.from_numpy(init.normal(0, 0.2, size=shape).T))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        for i in order_rng.permutation(len(x)).tolist():
            optimizer.zero_grad()
            loss = criterion(model(xt[i : i + 1]), yt[i : i + 1])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return [model[k].weight.detach().numpy().T for k in (0, 2, 4)], losses


LAB4_X = np.array([[2, 9, 0], [1, 5, 1], [3, 6, 2]], dtype=np.float32)
LAB4_Y = np.array([[90], [100], [88]], dtype=np.float32)


def lab4_torch_delta_rule(hidden: int, lr: float, epochs: int, seed: int = 0) -> tuple[float, float]:
    """Lab 4's loop: 3-hidden-1 sigmoid net without bias on the three rows (X / column max, y / 100),
    full batch, W += lr * X.T @ delta, float32. Returns the final mean squared error and the scaled
    prediction for [3, 8, 4]."""
    gen = torch.Generator().manual_seed(seed)
    x_max = torch.from_numpy(LAB4_X).max(0).values
    x, y = torch.from_numpy(LAB4_X) / x_max, torch.from_numpy(LAB4_Y) / 100
    w1, w2 = torch.randn(3, hidden, generator=gen), torch.randn(hidden, 1, generator=gen)
    for _ in range(epochs):
        a1 = torch.sigmoid(x @ w1)
        out = torch.sigmoid(a1 @ w2)
        out_delta = (y - out) * out * (1 - out)
        hidden_delta = (out_delta @ w2.T) * a1 * (1 - a1)
        w1 += lr * x.T @ hidden_delta
        w2 += lr * a1.T @ out_delta
    out = torch.sigmoid(torch.sigmoid(x @ w1) @ w2)
    x_new = torch.tensor([[3.0, 8.0, 4.0]]) / x_max
    return float(((y - out) ** 2).mean()), float(torch.sigmoid(torch.sigmoid(x_new @ w1) @ w2))


def lab4_stacked_numpy_floor(hidden: tuple[int, ...], lrs: tuple[float, ...], epochs: int, seed: int = 0) -> np.ndarray:
    """Lab 4's grid stacked by hand, every (hidden, lr) config one member, widths padded to the widest and
    masked: the delta rule written as the fewest NumPy calls (no layers, no loss bookkeeping, no
    Lightning). Not what the sweep runs; the floor that stacking in NumPy can reach. Returns the last
    update's 1/2 sum of squared errors per member."""
    configs = [(h, lr) for h in hidden for lr in lrs]
    widest, m = max(hidden), len(configs)
    features = LAB4_X.astype(np.float64)
    x = np.broadcast_to(features / features.max(0), (m, 3, 3))
    y = np.broadcast_to(LAB4_Y.astype(np.float64) / 100, (m, 3, 1))
    w1, w2 = np.zeros((m, widest, 3)), np.zeros((m, 1, widest))
    mask1, mask2 = np.zeros_like(w1), np.zeros_like(w2)
    for k, (h, _) in enumerate(configs):  # each config's own draw, in the notebook's (fan_in, fan_out) order
        gen = np.random.default_rng(seed)
        w1[k, :h], w2[k, :, :h] = gen.standard_normal((3, h)).T, gen.standard_normal((h, 1)).T
        mask1[k, :h], mask2[k, :, :h] = 1.0, 1.0
    lr = np.array([lr for _, lr in configs])[:, None, None]
    for _ in range(epochs):
        a1 = 1.0 / (1.0 + np.exp(-(x @ w1.mT)))
        out = 1.0 / (1.0 + np.exp(-(a1 @ w2.mT)))
        err = out - y
        loss = 0.5 * (err * err).sum((-2, -1))
        dz2 = err * (out * (1.0 - out))
        dz1 = (dz2 @ w2) * (a1 * (1.0 - a1))
        w2 -= lr * ((dz2.mT @ a1) * mask2)
        w1 -= lr * ((dz1.mT @ x) * mask1)
    return loss


def moons_numpy_gd(x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 0.5, seed: int = 42, hidden: int = 10):
    """Week 7's moons network as a plain NumPy loop: 2-hidden-2 ReLU with bias, N(0, 0.1) weights
    (``default_rng(seed)``, zero biases), softmax cross-entropy, full-batch gradient descent."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(0, 0.1, size=(2, hidden)), rng.normal(0, 0.1, size=(hidden, 2))
    b1, b2 = np.zeros(hidden), np.zeros(2)
    t = np.eye(2)[y]
    n = len(x)
    for _ in range(epochs):
        z1 = x @ w1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ w2 + b2
        e = np.exp(z2 - z2.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        d2 = (p - t) / n
        d1 = (d2 @ w2.T) * (z1 > 0)
        w2 -= lr * a1.T @ d2
        b2 -= lr * d2.sum(0)
        w1 -= lr * x.T @ d1
        b1 -= lr * d1.sum(0)
    return w1, b1, w2, b2
