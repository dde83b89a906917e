"""The tutorial's convolutional network, unchanged: the anchor our own CNN is measured against.

    input 1×28×28
    conv 32@5×5, padding 2 → ReLU → max-pool 2     32×14×14
    conv 64@5×5, no padding → ReLU → max-pool 2    64×5×5
    flatten                                        1600
    dense 256 → ReLU → dropout 0.5
    dense 128 → ReLU
    dense 10 (logits; softmax in the loss)

Adam with learning rate 1e-3, batches of 64, 15 epochs, PyTorch's default
initialisation, no augmentation. It reaches about 0.92 test accuracy on
Fashion-MNIST.
"""

from __future__ import annotations

from collections import OrderedDict
from numbers import Integral, Real

import torch
from torch import nn

from ..params import Interval
from .training import TorchClassifier


class LeNet(TorchClassifier):
    """The tutorial CNN (LeNet-style): two 5×5 conv + max-pool layers, three dense layers, Adam.

    Its own parameters are below; the others are TorchClassifier's.

    Parameters
    ----------
    epochs : int ≥ 1, default=15
        Passes over the training data.
    batch_size : int ≥ 1, default=64
        Examples per optimiser step.
    learning_rate : float > 0, default=1e-3
        Adam's learning rate, constant throughout.
    dropout : float in [0, 1), default=0.5
        The dropout probability before the second dense layer.
    """

    family = "lenet"
    _parameter_constraints = {
        **TorchClassifier._parameter_constraints,
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, epochs=15, batch_size=64, learning_rate=1e-3, dropout=0.5, validation_fraction=0.0,
                 device="auto", random_state=None, checkpoint_dir=None, threads=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.threads = threads

    def _build_network(self, n_classes: int) -> nn.Module:
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, 32, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(32, 64, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(64 * 5 * 5, 256), relu3=nn.ReLU(), dropout=nn.Dropout(self.dropout),
            fc2=nn.Linear(256, 128), relu4=nn.ReLU(),
            fc3=nn.Linear(128, n_classes),
        ))

    def _make_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(network.parameters(), lr=self.learning_rate)

    def _learning_rate(self, step: int, total_steps: int) -> float:
        return self.learning_rate

    def _epochs(self) -> int:
        return self.epochs

    def _batch_size(self) -> int:
        return self.batch_size
