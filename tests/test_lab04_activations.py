"""Lab 4's activation printout, reproduced by the hand-derived Sigmoid layer (models/layers/activations.py): the lab
prints sigmoid and its derivative at 0, 1 and -1 in float32, to four decimals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.layers import Sigmoid

LAB_INPUT = [0.0, 1.0, -1.0]
LAB_SIGMOID = [0.5000, 0.7311, 0.2689]  # "Sigmoid: tensor([0.5000, 0.7311, 0.2689])"
LAB_DERIVATIVE = [0.2500, 0.1966, 0.1966]  # "Sigmoid derivative: tensor([0.2500, 0.1966, 0.1966])"


@pytest.mark.parametrize("library", ["torch", "numpy"])  # the layer runs on both (models/layers/xp.py)
def test_sigmoid_and_its_derivative_print_as_in_the_lab(library: str) -> None:
    def float32(values: list[float]):
        return torch.tensor(values, dtype=torch.float32) if library == "torch" else np.array(values, np.float32)

    layer = Sigmoid()
    value = layer.forward(float32(LAB_INPUT))
    slope = layer.backward(float32([1.0, 1.0, 1.0]))  # dL/dZ for dL/dA = 1: sigma (1 - sigma), from the cached output
    for ours, printed in ((value, LAB_SIGMOID), (slope, LAB_DERIVATIVE)):
        ours = np.asarray(ours, dtype=np.float64)
        assert np.round(ours, 4).tolist() == printed
    assert float(value[0]) == 0.5 and float(slope[0]) == 0.25  # exact at 0, where both are powers of two
    assert float(slope[1]) == pytest.approx(float(slope[2]), abs=1e-7)  # sigma'(z) = sigma'(-z)
