"""One description of a fully connected network, shared by the native and the hand-derived nets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "identity"]
# softmax_ce: K >= 2 logits, softmax + cross-entropy (week 4, week 7, MNIST week).
# sigmoid_bce: one logit, sigmoid + binary cross-entropy (flower network).
# mse / mse_sigmoid: half squared error on an identity / sigmoid output (Lab 4).
Head = Literal["softmax_ce", "sigmoid_bce", "mse", "mse_sigmoid"]
Init = Literal[
    "normal",  # N(0, init_std), week 4 uses std 0.2
    "uniform",  # U[0, 1), the flower network
    "standard_normal",  # N(0, 1), Lab 4
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "torch_default",  # nn.Linear's own rule: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
]
BiasInit = Literal["zeros", "like_weights"]
Reduction = Literal["mean", "sum"]

CLASSIFICATION_HEADS = ("softmax_ce", "sigmoid_bce")


@dataclass
class MLPSpec:
    """Architecture, loss and initialisation of one multilayer perceptron.

    The same spec builds :class:`models.native_net.NativeMLP` and
    :class:`models.manual_net.ManualMLP`, so the two can only differ in how gradients are computed.
    """

    input_size: int = 2
    hidden_sizes: list[int] = field(default_factory=lambda: [3, 3])
    output_size: int = 2
    activation: Activation = "sigmoid"
    leaky_slope: float = 0.01
    bias: bool = True
    head: Head = "softmax_ce"
    # "mean" averages the per-example loss over the batch; "sum" adds it up (Lab 4's delta rule).
    reduction: Reduction = "mean"
    # L2 penalty l2/2 * sum(W**2) over weight matrices (not biases), added to the loss and its gradient.
    l2: float = 0.0
    init: Init = "normal"
    init_std: float = 0.2
    bias_init: BiasInit = "zeros"
    init_seed: int = 0

    def __post_init__(self) -> None:
        self.hidden_sizes = list(self.hidden_sizes)
        if not 0 <= len(self.hidden_sizes) <= 4:
            raise ValueError(f"hidden_sizes takes 0 to 4 layers, got {len(self.hidden_sizes)}: {self.hidden_sizes}")
        sizes = [self.input_size, *self.hidden_sizes, self.output_size]
        if any(int(s) < 1 for s in sizes):
            raise ValueError(f"every layer size must be >= 1, got {sizes}")
        if self.head == "softmax_ce" and self.output_size < 2:
            raise ValueError("head 'softmax_ce' needs output_size >= 2 classes; use 'sigmoid_bce' for one output")
        if self.head == "sigmoid_bce" and self.output_size != 1:
            raise ValueError(f"head 'sigmoid_bce' has exactly one output, got output_size={self.output_size}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")

    @property
    def layer_sizes(self) -> list[int]:
        return [self.input_size, *self.hidden_sizes, self.output_size]

    @property
    def is_classifier(self) -> bool:
        return self.head in CLASSIFICATION_HEADS

    @property
    def num_classes(self) -> int:
        """Classes seen by the metrics: a single sigmoid output is a two-class problem."""
        return 2 if self.head == "sigmoid_bce" else self.output_size
