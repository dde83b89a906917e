"""Our own CNN, designed to train fast on a CPU.

The network, in the order the data flows:

    input                                   1×28×28
    space-to-depth 2×2                      4×14×14   each 2×2 patch becomes 4 channels: nothing
                                                      is lost, and every later layer works on
                                                      4× fewer positions
    stage 1: 2 × (conv 3×3 → BN → ReLU)     w1×14×14 → max-pool 2 → w1×7×7
    stage 2: 2 × (conv 3×3 → BN → ReLU)     w2×7×7   → max-pool 2 → w2×3×3
    stage 3: 2 × (conv 3×3 → BN → ReLU)     w3×3×3   → global max-pool → w3
    linear                                  classes (logits)

Training: SGD with Nesterov momentum and weight decay, a one-cycle learning
rate (linear warm-up over the first ``warmup`` share of the steps, then
linear decay to zero), label smoothing, random horizontal flips of the
training images (right for clothing; wrong for digits and letters, so
``flip=False`` there) and, in the long preset, random shifts of up to
``crop`` pixels (zero padding, then a 28×28 crop). At test time the logits
of each image and of its mirror image are averaged (``tta``). Weights and
images are kept channels-last, the layout oneDNN's CPU convolutions prefer.

Everything a preset sets is in PRESETS below; any of it can be overridden
by the parameter of the same name (None means "the preset's").

What we measured on the 2-core CPU, Fashion-MNIST, to arrive here
(single runs; benchmarks/bench_cnn.py has the seeded means):
space-to-depth instead of a convolution at 28×28 was 1.7× faster per epoch
at equal accuracy; two convolutions per stage beat one of double width
(0.925 vs 0.919 at equal time); flip augmentation +0.45 points and flip
test-time augmentation +0.35; shifts cost accuracy in short runs (−0.3 to
−0.8 points) but pay off in long ones; bfloat16 autocast (on a CPU with
AVX-512 BF16) trains 1.35× faster than float32 at equal accuracy. For the
fast preset, batches of 256 at twice the learning rate take 25 % less time
per epoch than 128 and lose 0.2 points at equal epochs: 7 epochs of 256
(0.931, 3 seeds, 54 s) beat 6 of 128 (0.931, 1 seed, 66 s) and 6 of 256
(0.929, 48 s); narrower stages (32, 48, 96) lost 0.1–0.5 points for their speed.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .torch_training import TorchClassifier

PRESETS = {
    "fast": dict(epochs=7, widths=(32, 64, 128), batch_size=256, learning_rate=0.4, crop=0),
    "long": dict(epochs=15, widths=(64, 128, 256), batch_size=128, learning_rate=0.2, crop=2),
}


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # no conv bias: the batch norm that follows has its own
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def network(widths: tuple[int, int, int], n_classes: int) -> nn.Sequential:
    w1, w2, w3 = widths
    return nn.Sequential(OrderedDict(
        space_to_depth=nn.PixelUnshuffle(2),
        stage1=nn.Sequential(*conv_bn_relu(4, w1), *conv_bn_relu(w1, w1)), pool1=nn.MaxPool2d(2),
        stage2=nn.Sequential(*conv_bn_relu(w1, w2), *conv_bn_relu(w2, w2)), pool2=nn.MaxPool2d(2),
        stage3=nn.Sequential(*conv_bn_relu(w2, w3), *conv_bn_relu(w3, w3)), pool3=nn.AdaptiveMaxPool2d(1),
        flatten=nn.Flatten(),
        head=nn.Linear(w3, n_classes, bias=False),
    ))


def random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``pixels`` in each direction, filling with zeros (the background).

    One slicing per possible shift rather than per image: (2·pixels + 1)² tensor operations per call.
    """
    n, _, height, width = images.shape
    padded = F.pad(images, (pixels,) * 4)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, n), generator=generator).to(images.device)
    shifted = torch.empty_like(images)
    for y in range(2 * pixels + 1):
        for x in range(2 * pixels + 1):
            chosen = torch.nonzero((dy == y) & (dx == x)).squeeze(1)
            shifted[chosen] = padded[chosen, :, y:y + height, x:x + width]
    return shifted


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left to right."""
    flip = (torch.rand(len(images), generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class CNN(TorchClassifier):
    """Our fast CNN: space-to-depth, 3 stages of 2 conv-BN-ReLU, one-cycle SGD, flips; presets fast/long.

    preset : "fast" (about 0.93 on Fashion-MNIST in under a minute on 2 CPU cores) or
        "long" (about 0.945 in under ten minutes); sets epochs, widths, batch_size,
        learning_rate and crop, each of which can be given to override it.
    widths : channels of the three stages, a tuple or "32,64,128".
    crop : random shifts of up to this many pixels (0: none).
    momentum, weight_decay : SGD's (Nesterov) momentum and L2 weight decay.
    warmup : share of the steps over which the learning rate rises linearly from 0 to its peak.
    label_smoothing : target probability moved from the true class to all classes evenly.
    flip : random horizontal flips while training (turn off for digits and letters).
    tta : at test time, average the logits of each image and its mirror image (only with flip).
    The other parameters (validation_fraction, device, random_state, checkpoint_dir,
    verbose) are described in torch_training.TorchClassifier.
    """

    family = "cnn"
    channels_last = True

    def __init__(self, preset="fast", epochs=None, widths=None, batch_size=None, learning_rate=None, crop=None,
                 momentum=0.9, weight_decay=5e-4, warmup=0.2, label_smoothing=0.1, flip=True, tta=True,
                 bf16=True, validation_fraction=0.0, device="auto", random_state=None, checkpoint_dir=None, verbose=False):
        self.preset = preset
        self.epochs = epochs
        self.widths = widths
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.crop = crop
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.label_smoothing = label_smoothing
        self.flip = flip
        self.tta = tta
        self.bf16 = bf16
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose

    def _setting(self, name: str):
        """The parameter if given, else the preset's value."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        value = getattr(self, name)
        return PRESETS[self.preset][name] if value is None else value

    def _widths(self) -> tuple[int, int, int]:
        widths = self._setting("widths")
        if isinstance(widths, str):  # from the command line: "32,64,128"
            widths = widths.split(",")
        widths = tuple(int(w) for w in np.atleast_1d(widths))
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must be three positive channel counts, got {self._setting('widths')!r}")
        return widths

    def _build_network(self, n_classes: int) -> nn.Module:
        return network(self._widths(), n_classes)

    def _make_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(network.parameters(), lr=0.0, momentum=self.momentum, nesterov=True,
                               weight_decay=self.weight_decay)

    def _learning_rate(self, step: int, total_steps: int) -> float:
        peak, progress = self._setting("learning_rate"), step / total_steps
        if progress < self.warmup:
            return peak * progress / self.warmup
        return peak * (1 - progress) / (1 - self.warmup)

    def _epochs(self) -> int:
        return int(self._setting("epochs"))

    def _batch_size(self) -> int:
        return int(self._setting("batch_size"))

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        crop = int(self._setting("crop"))
        if crop:
            images = random_shift(images, crop, generator)
        if self.flip:
            images = random_flip(images, generator)
        return images

    def _autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.bf16 else None

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def _predict_logits(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        logits = network(images)
        if self.tta and self.flip:
            logits = (logits + network(images.flip(-1))) / 2
        return logits
