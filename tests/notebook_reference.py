"""The week-4 notebook's recipe, restated independently in plain NumPy, as a test oracle."""

from __future__ import annotations

import numpy as np


def notebook_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    cov = np.array([[0.5, 0.0], [0.0, 0.5]])
    parts = []
    for n in (400, 200):
        a = rng.multivariate_normal([-1.0, -1.0], cov, size=n // 2)
        b = rng.multivariate_normal([1.0, 1.0], cov, size=n // 2)
        parts.append((np.vstack([a, b]), np.r_[np.zeros(n // 2, int), np.ones(n // 2, int)]))
    (xtr, ytr), (xte, yte) = parts
    i, j = rng.permutation(400), rng.permutation(200)
    return xtr[i], ytr[i], xte[j], yte[j]


def notebook_sgd(x: np.ndarray, y: np.ndarray, epochs: int, lr: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """2-3-3-2 sigmoid, no bias, N(0, 0.2) init, single-example SGD with per-epoch permutations."""
    init = np.random.default_rng(seed)
    w = [init.normal(0, 0.2, size=s) for s in ((2, 3), (3, 3), (3, 2))]
    order_rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        for i in order_rng.permutation(len(x)):
            a0 = x[i : i + 1]
            a1 = 1 / (1 + np.exp(-(a0 @ w[0])))
            a2 = 1 / (1 + np.exp(-(a1 @ w[1])))
            z3 = a2 @ w[2]
            p = np.exp(z3 - z3.max()) / np.exp(z3 - z3.max()).sum()
            t = np.eye(2)[y[i : i + 1]]
            losses.append(float(-np.log(p[0, y[i]])))
            d3 = p - t
            d2 = (d3 @ w[2].T) * a2 * (1 - a2)
            d1 = (d2 @ w[1].T) * a1 * (1 - a1)
            w[2] -= lr * a2.T @ d3
            w[1] -= lr * a1.T @ d2
            w[0] -= lr * a0.T @ d1
    return w, losses
