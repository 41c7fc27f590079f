"""The week-4 notebook's data recipe, restated independently in plain NumPy, as a test oracle.

Its training loop is :func:`benchmarks.baselines.week04_numpy_sgd`, shared with the benchmarks."""

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
