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

import torch
from torch import nn

from .training import TorchClassifier


class LeNet(TorchClassifier):
    """The tutorial CNN (LeNet-style): two 5×5 conv + max-pool layers, three dense layers, Adam.

    epochs, batch_size, learning_rate : Adam's constant learning rate, examples per step, passes.
    dropout : dropout probability before the second dense layer.
    The other parameters (validation_fraction, device, random_state, checkpoint_dir,
    verbose) are described in torch_training.TorchClassifier.
    """

    family = "lenet"

    def __init__(self, epochs=15, batch_size=64, learning_rate=1e-3, dropout=0.5, validation_fraction=0.0,
                 device="auto", random_state=None, checkpoint_dir=None, verbose=False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.dropout = dropout
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose

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
