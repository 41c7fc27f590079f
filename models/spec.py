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
    "legacy_numpy",  # np.random.seed(init_seed), then legacy_call per entry of draw_order, * legacy_scale
]
LegacyCall = Literal["rand", "randn"]
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
    # init "legacy_numpy" only: the legacy generator's call (rand: U[0, 1), randn: N(0, 1)) and the
    # order of the calls. An entry is a whole parameter named as in weights_*.json ("W1", "b1", "K1",
    # "c1": one call of its shape) or one scalar ("W1[1,0]": one call); empty = K, W, then c, b in layer order.
    legacy_call: LegacyCall = "rand"
    draw_order: list[str] = field(default_factory=list)
    # init "legacy_numpy" only: every drawn value is multiplied by this, the notebooks' ``randn(...) * std``
    # (week 7: 0.1); 1 keeps the draws as they come (the flower notebook's bare rand()).
    legacy_scale: float = 1.0
    # Inverted dropout after every hidden dense activation while training: each unit is kept with
    # probability 1 - dropout and scaled by 1 / (1 - dropout), so evaluation needs no rescaling.
    dropout: float = 0.0
    # Batch normalisation after every hidden dense layer, before its activation (torch.nn.BatchNorm1d:
    # learnable gamma = 1, beta = 0 at the start; batch statistics while training, running ones in evaluation).
    batch_norm: bool = False
    batch_norm_momentum: float = 0.1  # weight of each batch's statistics in the running ones, torch's default
    batch_norm_eps: float = 1e-5  # added to the variance before its square root, torch's default
    # Optional LeNet-style front: inputs are reshaped to image_shape (C, H, W), then every entry of
    # conv_channels adds conv (kernel conv_kernel_size, stride 1, zero padding conv_padding) ->
    # activation -> 2x2 max pool, and the flattened result feeds the dense layers.
    conv_channels: list[int] = field(default_factory=list)
    image_shape: list[int] | None = None
    conv_kernel_size: int = 5
    conv_padding: int = 2

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
        if not self.legacy_scale > 0:
            raise ValueError(f"legacy_scale scales every legacy_numpy draw and must be > 0, got {self.legacy_scale}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout is a drop probability in [0, 1), got {self.dropout}")
        if self.batch_norm and not self.hidden_sizes:
            raise ValueError("batch_norm normalises hidden layers, and hidden_sizes is empty; add one or set it false")
        if not 0.0 < self.batch_norm_momentum <= 1.0 or self.batch_norm_eps <= 0:
            raise ValueError(
                f"batch_norm_momentum must be in (0, 1] and batch_norm_eps > 0, got "
                f"{self.batch_norm_momentum} and {self.batch_norm_eps}"
            )
        self.conv_channels = list(self.conv_channels)
        if self.conv_channels:
            self._check_conv_front()

    @classmethod
    def lenet(cls, **changes: object) -> MLPSpec:
        """The LeNet-style net of the MNIST week's next ideas (configs/experiments/next_ideas/lenet.yaml):
        28x28 grey images, conv 6 and 16 channels (5x5, padding 2), ReLU, 2x2 max pools, 120-84-10."""
        fields: dict[str, object] = dict(
            input_size=784,
            hidden_sizes=[120, 84],
            output_size=10,
            activation="relu",
            conv_channels=[6, 16],
            image_shape=[1, 28, 28],
            conv_kernel_size=5,
            conv_padding=2,
            init="torch_default",
        )
        return cls(**{**fields, **changes})

    def _check_conv_front(self) -> None:
        if self.image_shape is None or len(self.image_shape) != 3:
            raise ValueError(f"conv_channels needs image_shape [channels, height, width], got {self.image_shape}")
        self.image_shape = [int(v) for v in self.image_shape]
        channels, height, width = self.image_shape
        if channels * height * width != self.input_size:
            raise ValueError(
                f"image_shape {self.image_shape} holds {channels * height * width} values but input_size is "
                f"{self.input_size}; make them agree (28x28 grey images: image_shape [1, 28, 28], input_size 784)"
            )
        if any(c < 1 for c in self.conv_channels) or self.conv_kernel_size < 1 or self.conv_padding < 0:
            raise ValueError(
                f"conv_channels must be >= 1, conv_kernel_size >= 1 and conv_padding >= 0, got "
                f"{self.conv_channels}, {self.conv_kernel_size}, {self.conv_padding}"
            )
        grow = self._conv_growth
        for k, (_, height, width) in enumerate(self.conv_feature_shapes()[:-1], start=1):
            if height + grow < 2 or width + grow < 2 or (height + grow) % 2 or (width + grow) % 2:
                raise ValueError(
                    f"conv layer {k} maps {height}x{width} pixels to {height + grow}x{width + grow}, which the 2x2 "
                    "max pool cannot halve exactly; change conv_padding or conv_kernel_size, or use fewer conv layers"
                )

    @property
    def _conv_growth(self) -> int:
        """How much a conv layer changes the height and width: 2 padding - kernel + 1 (stride 1)."""
        return 2 * self.conv_padding - self.conv_kernel_size + 1

    def conv_feature_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) of the image entering each conv layer, then of the conv front's output.

        Each layer maps H to H + 2 padding - kernel + 1, which the 2x2 pool then halves.
        """
        if not self.conv_channels:
            return []
        assert self.image_shape is not None
        channels, height, width = self.image_shape
        shapes = [(channels, height, width)]
        grow = self._conv_growth
        for out_channels in self.conv_channels:
            height, width = (height + grow) // 2, (width + grow) // 2
            shapes.append((out_channels, height, width))
        return shapes

    @property
    def conv_channel_pairs(self) -> list[tuple[int, int]]:
        """(in, out) channels of each conv layer; empty without a conv front."""
        channels = [c for c, _, _ in self.conv_feature_shapes()]
        return list(zip(channels[:-1], channels[1:]))

    @property
    def dense_input_size(self) -> int:
        """Features entering the first dense layer: the input, or the flattened conv front output."""
        if not self.conv_channels:
            return self.input_size
        channels, height, width = self.conv_feature_shapes()[-1]
        return channels * height * width

    @property
    def layer_sizes(self) -> list[int]:
        """Sizes of the dense layers' inputs and outputs (after the conv front, if any)."""
        return [self.dense_input_size, *self.hidden_sizes, self.output_size]

    @property
    def summary(self) -> str:
        """One line for tables, e.g. ``conv 6,16 (5x5) + 784-120-84-10 relu softmax_ce``."""
        dense = "-".join(map(str, self.layer_sizes))
        conv = f"conv {','.join(map(str, self.conv_channels))} ({self.conv_kernel_size}x{self.conv_kernel_size}) + "
        dropout = f" dropout {self.dropout:g}" if self.dropout else ""
        batch_norm = " batch_norm" if self.batch_norm else ""
        return f"{conv if self.conv_channels else ''}{dense} {self.activation} {self.head}{batch_norm}{dropout}"

    @property
    def is_classifier(self) -> bool:
        return self.head in CLASSIFICATION_HEADS

    @property
    def num_classes(self) -> int:
        """Classes seen by the metrics: a single sigmoid output is a two-class problem."""
        return 2 if self.head == "sigmoid_bce" else self.output_size
