"""Initial weights, drawn once in NumPy so both nets start from the very same numbers.

Draw order (documented so runs can be checked against the notebooks): one
``numpy.random.default_rng(spec.init_seed)``; every weight matrix in layer order, each drawn in
the notebooks' (fan_in, fan_out) orientation; then, for ``bias_init="like_weights"`` or
``init="torch_default"``, every bias vector in layer order. With ``init="normal"`` this is exactly
the week-4 notebook's ``rng.normal(0, 0.2, size=(d_in, h1))`` sequence.
"""

from __future__ import annotations

import math

import numpy as np

from models.spec import MLPSpec


def _draw(rng: np.random.Generator, spec: MLPSpec, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    init = spec.init
    if init == "normal":
        return rng.normal(0.0, spec.init_std, size=shape)
    if init == "uniform":
        return rng.random(size=shape)
    if init == "standard_normal":
        return rng.standard_normal(size=shape)
    if init == "xavier_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    if init == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=shape)
    if init == "he_normal":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    if init == "he_uniform":
        bound = math.sqrt(6.0 / fan_in)
        return rng.uniform(-bound, bound, size=shape)
    if init == "torch_default":
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)
    raise ValueError(f"unknown init {init!r}")


def initial_parameters(spec: MLPSpec) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per layer: weight in torch's (fan_out, fan_in) layout and bias (fan_out,) or None, float64."""
    rng = np.random.default_rng(spec.init_seed)
    sizes = spec.layer_sizes
    pairs = list(zip(sizes[:-1], sizes[1:]))
    weights = [_draw(rng, spec, (fan_in, fan_out), fan_in, fan_out).T for fan_in, fan_out in pairs]
    draw_bias = spec.bias_init == "like_weights" or spec.init == "torch_default"
    biases: list[np.ndarray | None] = []
    for fan_in, fan_out in pairs:
        if not spec.bias:
            biases.append(None)
        elif draw_bias:
            biases.append(_draw(rng, spec, (fan_out,), fan_in, fan_out))
        else:
            biases.append(np.zeros(fan_out))
    return [(np.ascontiguousarray(w, dtype=np.float64), b) for w, b in zip(weights, biases)]
