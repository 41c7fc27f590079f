"""One small unit per layer: ``forward`` keeps what ``backward`` needs; ``backward`` takes dL/d(output),
returns dL/d(input) and sets the layer's ``grads``. Each file holds one layer kind's whole math."""

from models.layers.activations import Identity, LeakyReLU, ReLU, Sigmoid, Tanh, activation_layer
from models.layers.batchnorm import BatchNorm
from models.layers.conv import Conv2d, Flatten, MaxPool2d, Unflatten
from models.layers.dense import Dense
from models.layers.dropout import Dropout
from models.layers.heads import MeanSquaredError, SigmoidBinaryCrossEntropy, SoftmaxCrossEntropy, head_layer

__all__ = [
    "BatchNorm",
    "Conv2d",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "MaxPool2d",
    "MeanSquaredError",
    "ReLU",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Unflatten",
    "activation_layer",
    "head_layer",
]
