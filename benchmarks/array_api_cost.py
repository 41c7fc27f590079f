"""What the Array API standard's dispatch would cost the hand-derived layers on W1 (recorded only).

The layers pick torch or NumPy with one ``isinstance`` (``models/layers/xp.py``). ``array_namespace``
from array-api-compat (scikit-learn ships a copy) would replace that choice; this measures both per
call and the W1 update itself (week-4 net, one example, NumPy path), and projects the extra time per
update for the namespace lookups an update makes (one per layer forward and backward).

    python benchmarks/array_api_cost.py
"""

from __future__ import annotations

import timeit

import numpy as np
import torch
from sklearn.externals.array_api_compat import array_namespace

from models.layers import xp
from models.manual_net import LayerChain
from models.spec import MLPSpec

CALLS = 100_000


def per_call_us(fn) -> float:
    return min(timeit.repeat(fn, number=CALLS, repeat=3)) / CALLS * 1e6


def measure() -> dict[str, str]:
    spec = MLPSpec(input_size=2, hidden_sizes=[3, 3], output_size=2, bias=False)
    rng = np.random.default_rng(0)
    weights = [(rng.normal(size=(o, i)), None) for i, o in zip(spec.layer_sizes[:-1], spec.layer_sizes[1:])]
    chain = LayerChain(spec, weights)
    x, y = rng.normal(size=(1, 2)), np.array([1])

    def update() -> None:
        chain.loss(x, y)
        chain.backward()

    lookups = 2 * (len(chain.layers) + 1)  # every layer's forward and backward, and the head's
    isinstance_us = per_call_us(lambda: xp.is_numpy(x))
    namespace_us = per_call_us(lambda: array_namespace(x))
    namespace_torch_us = per_call_us(lambda: array_namespace(torch.zeros(1)))
    update_us = per_call_us(update)
    extra = lookups * (namespace_us - isinstance_us)
    return {
        "isinstance dispatch, per call": f"{isinstance_us:.2f} us",
        "array_namespace, per call (NumPy / torch)": f"{namespace_us:.2f} / {namespace_torch_us:.2f} us",
        "W1 update (forward + backward, NumPy path)": f"{update_us:.1f} us, {lookups} layer calls",
        "projected extra per W1 update with array_namespace": f"{extra:.1f} us = {extra / update_us:.0%} of the update",
    }


def main() -> None:
    for name, value in measure().items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
