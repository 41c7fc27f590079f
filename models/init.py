"""Initial weights, drawn once in NumPy so both nets start from the very same numbers.

Draw order (documented so runs can be checked against the notebooks): one
``numpy.random.default_rng(spec.init_seed)``; every conv kernel (out, in, k, k) in layer order, with
torch's fans in * k * k and out * k * k; every dense weight matrix in layer order, each drawn in
the notebooks' (fan_in, fan_out) orientation; then, for ``bias_init="like_weights"`` or
``init="torch_default"``, every bias vector in layer order (conv layers first). With ``init="normal"`` this is exactly
the week-4 notebook's ``rng.normal(0, 0.2, size=(d_in, h1))`` sequence.

``init="legacy_numpy"`` instead replays a notebook that calls ``np.random.seed(init_seed)`` and then
``np.random.rand()`` (or ``randn()``) once per scalar or once per parameter, each call's values times
``spec.legacy_scale`` (week 7's ``randn(2, 10) * 0.1``): ``spec.draw_order`` lists the calls in order
(see :func:`legacy_numpy_parameters`). It uses its own
``RandomState(init_seed)``, the stream ``np.random.seed`` selects, and leaves NumPy's global state alone.
"""

from __future__ import annotations

import math
import re

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


DRAW_ENTRY = re.compile(r"([KcWb]\d+)(?:\[\s*(\d+(?:\s*,\s*\d+)*)\s*\])?")


def parameter_shapes(spec: MLPSpec) -> dict[str, tuple[int, ...]]:
    """Every parameter by its weights_*.json name, in the default draw order (conv kernels, dense
    weights, then conv and dense biases), with the shape it is drawn in: ``W{k}`` (fan_in, fan_out)."""
    k = spec.conv_kernel_size
    pairs = spec.conv_channel_pairs
    dense = list(zip(spec.layer_sizes[:-1], spec.layer_sizes[1:]))
    shapes: dict[str, tuple[int, ...]] = {f"K{j}": (c_out, c_in, k, k) for j, (c_in, c_out) in enumerate(pairs, 1)}
    shapes.update({f"W{j}": pair for j, pair in enumerate(dense, 1)})
    if spec.bias:
        shapes.update({f"c{j}": (c_out,) for j, (_, c_out) in enumerate(pairs, 1)})
        shapes.update({f"b{j}": (fan_out,) for j, (_, fan_out) in enumerate(dense, 1)})
    return shapes


def legacy_numpy_parameters(spec: MLPSpec) -> dict[str, np.ndarray]:
    """Replay ``np.random.seed(init_seed)`` followed by one ``rand()``/``randn()`` call per entry of
    ``spec.draw_order``, times ``spec.legacy_scale``: ``"W1"`` is one call of W1's (fan_in, fan_out) shape,
    the notebooks' ``randn(n_in, n_out) * std``; ``"W1[1,0]"`` one scalar call for the weight from input 1
    to unit 0. Every parameter must be covered exactly once; biases left out entirely are zeros when
    ``bias_init`` is ``zeros``. Empty order: whole parameters in
    :func:`parameter_shapes` order, biases only with ``bias_init: like_weights``."""
    shapes = parameter_shapes(spec)
    order = list(spec.draw_order) or [name for name in shapes if name[0] in "KW" or spec.bias_init == "like_weights"]
    rng = np.random.RandomState(spec.init_seed)
    draw = rng.random_sample if spec.legacy_call == "rand" else rng.standard_normal
    values = {name: np.full(shape, np.nan) for name, shape in shapes.items()}
    drawn = {name: np.zeros(shape, dtype=bool) for name, shape in shapes.items()}
    where = "model.init_args.net.draw_order"
    for entry in order:
        match = DRAW_ENTRY.fullmatch(entry.replace(" ", ""))
        if match is None or match.group(1) not in shapes:
            raise ValueError(
                f"{where}: {entry!r} names no parameter of this net; use {', '.join(shapes)} "
                "or one scalar such as 'W1[0,1]'"
            )
        name, index_text = match.groups()
        index: tuple[int, ...] | slice = slice(None)
        if index_text is not None:
            index = tuple(int(i) for i in index_text.split(","))
            if len(index) != len(shapes[name]) or any(i >= n for i, n in zip(index, shapes[name])):
                raise ValueError(f"{where}: {entry!r} is outside {name}'s shape {shapes[name]}")
        if drawn[name][index].any():
            raise ValueError(f"{where}: {entry!r} draws a value of {name} a second time")
        values[name][index] = (draw() if index_text is not None else draw(size=shapes[name])) * spec.legacy_scale
        drawn[name][index] = True
    for name, done in drawn.items():
        if not done.any() and name[0] in "cb" and spec.bias_init == "zeros":
            values[name][...] = 0.0
        elif not done.all():
            first = ",".join(str(int(i)) for i in np.argwhere(~done)[0])
            raise ValueError(
                f"{where}: {name}[{first}] (and {int((~done).sum()) - 1} more) is never drawn; list every "
                f"parameter ({', '.join(shapes)}) whole or scalar by scalar"
            )
    return values


def initial_parameters(spec: MLPSpec) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per layer, conv layers first: weight in torch's layout (conv (out, in, k, k), dense
    (fan_out, fan_in)) and bias (out,) or None, float64."""
    if spec.init == "legacy_numpy":
        legacy = legacy_numpy_parameters(spec)
        layers = [(f"K{j}", f"c{j}") for j in range(1, len(spec.conv_channels) + 1)]
        layers += [(f"W{j}", f"b{j}") for j in range(1, len(spec.layer_sizes))]
        return [(np.ascontiguousarray(legacy[w].T if w[0] == "W" else legacy[w]), legacy.get(b)) for w, b in layers]
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
