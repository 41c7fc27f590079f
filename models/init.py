"""Initial weights, drawn once in NumPy so both nets start from the very same numbers.

Draw order (documented so runs can be checked against the notebooks): one
``numpy.random.default_rng(spec.init_seed)``; every conv kernel (out, in, k, k) in layer order, with
torch's fans in * k * k and out * k * k; every dense weight matrix in layer order, each drawn in
the notebooks' (fan_in, fan_out) orientation; then, for ``bias_init="like_weights"`` or
``init="torch_default"``, every bias vector in layer order (conv layers first). With ``init="normal"`` this is exactly
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
    """Per layer, conv layers first: weight in torch's layout (conv (out, in, k, k), dense
    (fan_out, fan_in)) and bias (out,) or None, float64."""
    rng = np.random.default_rng(spec.init_seed)
    area = spec.conv_kernel_size**2
    conv_pairs = spec.conv_channel_pairs
    fans = [(c_in * area, c_out * area) for c_in, c_out in conv_pairs]
    weights = [
        _draw(rng, spec, (c_out, c_in, spec.conv_kernel_size, spec.conv_kernel_size), *fan)
        for (c_in, c_out), fan in zip(conv_pairs, fans)
    ]
    sizes = spec.layer_sizes
    dense_pairs = list(zip(sizes[:-1], sizes[1:]))
    weights += [_draw(rng, spec, (fan_in, fan_out), fan_in, fan_out).T for fan_in, fan_out in dense_pairs]
    fans += dense_pairs
    bias_sizes = [c_out for _, c_out in conv_pairs] + [fan_out for _, fan_out in dense_pairs]
    draw_bias = spec.bias_init == "like_weights" or spec.init == "torch_default"
    biases: list[np.ndarray | None] = []
    for (fan_in, fan_out), size in zip(fans, bias_sizes):
        if not spec.bias:
            biases.append(None)
        elif draw_bias:
            biases.append(_draw(rng, spec, (size,), fan_in, fan_out))
        else:
            biases.append(np.zeros(size))
    return [(np.ascontiguousarray(w, dtype=np.float64), b) for w, b in zip(weights, biases)]
