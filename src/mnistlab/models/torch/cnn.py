"""Our own CNN, designed to train fast on a CPU.

The network is stages of two 3×3 convolutions, each followed by batch norm
and ReLU, every stage halving the resolution with a 2×2 max-pool, then a global
max-pool and a linear layer. Where a stage pools is the preset's ``pool``:

``"after"`` (the long preset; widths w0…w3)::

    input                                   1×28×28
    stage 0: 2 × (conv 3×3 → BN → ReLU)     w0×28×28 → max-pool 2 → w0×14×14
    stage 1: 2 × (conv 3×3 → BN → ReLU)     w1×14×14 → max-pool 2 → w1×7×7
    stage 2: 2 × (conv 3×3 → BN → ReLU)     w2×7×7   → max-pool 2 → w2×3×3
    stage 3: 2 × (conv 3×3 → BN → ReLU)     w3×3×3   → global max-pool → w3
    linear                                  classes (logits)

``"between"`` (the fast preset; widths w0…w2), airbench's order: each stage's
first convolution is pooled before its batch norm and ReLU, so those and the
second convolution run at a quarter of the pixels::

    input                                                   1×28×28
    stage 0: conv 3×3 → max-pool 2 → BN → ReLU → conv → BN → ReLU   w0×14×14
    stage 1: the same                                               w1×7×7
    stage 2: the same                                               w2×3×3 → global max-pool → w2
    linear                                                          classes (logits)

With ``whiten`` (the fast preset) the first convolution is not learned: its
filters are fixed before training to whiten the training images' 3×3 patches
(their principal directions scaled to unit variance, each with its negative;
airbench's first layer), which trains the same network to a given accuracy in
fewer epochs, and spares that convolution's backward pass.

Training: SGD with Nesterov momentum and weight decay — in the fast preset
the convolution filters by Muon instead (their momentum orthogonalised,
``muon.NesterovSGD.filter_muon``), which reaches in 3 epochs what SGD needs 4 for — a
one-cycle learning rate (linear warm-up over the first ``warmup`` share of the steps, then
linear decay to zero), label smoothing, random horizontal flips of the
training images (right for clothing, wrong for digits and letters: by
default only where the dataset's description says a mirror image keeps
its class) and, in the long preset, random shifts of up to
``crop`` pixels (zero padding, then a 28×28 crop). At test time the logits
of each image and of its mirror image are averaged (``tta``). Weights and
images are kept channels-last, the layout oneDNN's CPU convolutions prefer,
and the training steps run in bfloat16 where the hardware computes it.

Everything a preset sets is in PRESETS below; any of it can be overridden
by the parameter of the same name (None means "the preset's").

Why this design (the measurements that chose it): docs/design/cnn.md.
"""

from __future__ import annotations

from collections import OrderedDict
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

from ...data.registry import DatasetSpec
from ...errors import ParameterError
from ..base import N_CLASSES
from ..params import Interval, PositiveInts, StrOptions
from .device import computes_bfloat16
from .muon import NesterovSGD
from .training import TorchClassifier

PRECISIONS = ("auto", "bfloat16", "float32")
POOLS = ("after", "between")
OPTIMIZERS = ("sgd", "muon")
MAX_STAGES = 4  # 28 → 14 → 7 → 3: one more halving would leave 1×1 (with pool="between", 3 stages)
MAX_CROP = 14  # half the image: a larger shift moves most of the object out (and costs (2·crop + 1)² copies a batch)
PRESETS = {
    "fast": dict(epochs=3, widths=(16, 32, 128), pool="between", batch_size=256, learning_rate=0.4, crop=0,
                 whiten=True, optimizer="muon"),
    "long": dict(epochs=20, widths=(16, 64, 128, 256), pool="after", batch_size=128, learning_rate=0.2, crop=2,
                 whiten=False, optimizer="sgd"),
}
PATCH_DIRECTIONS = 9  # of a 3×3 patch: the whitening filters are these and their negatives
WHITENING_IMAGES = 2048  # 1.6 million patches: plenty for their 9×9 covariance


class PooledConv2d(nn.Conv2d):
    """A 3×3 convolution (zero padding 1, no bias) whose output a 2×2 max-pool reads next.

    On an odd-sized input the pool drops the output's last row and column (7×7 → 3×3 reads
    6×6), so they are not computed: the same numbers with a quarter fewer multiplications at
    7×7. The weights are a plain ``Conv2d``'s, so model files are those of ``nn.Conv2d``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        odd_height, odd_width = x.shape[-2] % 2, x.shape[-1] % 2
        if not (odd_height or odd_width):
            return super().forward(x)
        # pad top and left as padding=1 does, bottom and right only where that row or column is read
        x = F.pad(x, (1, 1 - odd_width, 1, 1 - odd_height))
        return F.conv2d(x, self.weight)


def conv_bn_relu(c_in: int, c_out: int, pooled: bool = False) -> list[nn.Module]:
    """A 3×3 convolution (a ``PooledConv2d`` where a max-pool reads it), batch norm, ReLU."""
    # no conv bias: the batch norm that follows has its own
    conv = PooledConv2d(c_in, c_out) if pooled else nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    return [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def network(widths: tuple[int, ...], n_classes: int, pool: str = "after") -> nn.Sequential:
    """Stages of two conv-BN-ReLU that halve the resolution (``pool``: after both convolutions, each
    but the last stage; or between them, every stage); global max-pool; linear.

    A convolution that a max-pool reads is a ``PooledConv2d``, which skips what the pool drops.
    """
    layers, channels = OrderedDict(), 1
    for stage, width in enumerate(widths):
        if pool == "between":
            first = [PooledConv2d(channels, width), nn.MaxPool2d(2), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            layers[f"stage{stage}"] = nn.Sequential(*first, *conv_bn_relu(width, width))
        else:
            pooled = stage < len(widths) - 1
            layers[f"stage{stage}"] = nn.Sequential(*conv_bn_relu(channels, width), *conv_bn_relu(width, width, pooled))
            if pooled:
                layers[f"pool{stage}"] = nn.MaxPool2d(2)
        channels = width
    layers["pool"] = nn.AdaptiveMaxPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["head"] = nn.Linear(channels, n_classes, bias=False)
    return nn.Sequential(layers)


def whitening_filters(images: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` (≤ 18) 3×3 filters that whiten the images' patches (zero padding 1, as the
    convolution sees them): the principal directions, largest variance first, each scaled to give
    unit variance and followed by its negative (so that a ReLU after them keeps both signs)."""
    patches = F.unfold(images[:WHITENING_IMAGES].float(), 3, padding=1).transpose(1, 2).reshape(-1, PATCH_DIRECTIONS)
    variances, directions = torch.linalg.eigh(torch.cov(patches.T.double()))  # ascending variances
    variances, directions = variances.flip(0), directions.flip(1)
    # the floor: a direction with next to no variance (flat patches) is not blown up
    whitening = (directions / (variances + 1e-2 * variances.mean()).sqrt()).T
    return torch.stack([whitening, -whitening], dim=1).reshape(-1, 1, 3, 3)[:count].float()


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
    """Our fast CNN: stages of 2 conv-BN-ReLU, one-cycle schedule, flips; presets fast (3 stages, a whitened
    first layer, Muon) and long (4 stages, SGD).

    Its own parameters are below; the others are TorchClassifier's. Those that default to
    None take the preset's value.

    Parameters
    ----------
    preset : {"fast", "long"}, default="fast"
        The recipe that sets epochs, widths, pool, batch_size, learning_rate, crop, whiten and optimizer,
        each of which can be given to override it. "fast" reaches about 0.93 on Fashion-MNIST in about a
        minute of training on 2 plain CPU cores (AVX2, float32; benchmarks/bench_cnn.py); "long" trains
        20 epochs of a wider network with SGD (not in BENCHMARKS.md: not measured on this network). Both are
        tuned for the full 60 000 training images: on a few thousand, the few optimiser steps
        at a peak learning rate of 0.2–0.4 can diverge (the fast preset on 3 000 images: 0.18 test
        accuracy); there, lower it (learning_rate=0.1 with batch_size=64: 0.86).
    epochs : int ≥ 1 or None, default=None
        Passes over the training data.
    widths : sequence of 1 to 4 ints or None, default=None
        The channels of each stage, one entry per stage (at most 3 with pool="between").
    pool : {"after", "between"} or None, default=None
        Where each stage halves the resolution: after its two convolutions, or between them
        (see the module docstring).
    batch_size : int ≥ 1 or None, default=None
        Examples per optimiser step.
    learning_rate : float > 0 or None, default=None
        The peak of the one-cycle learning rate.
    crop : int in [0, 14] or None, default=None
        Random shifts of up to this many pixels while training (0: none).
    whiten : bool or None, default=None
        Fix the first convolution's filters to whiten the training images' 3×3 patches instead of
        learning them (see the module docstring); the first stage then has at most 18 channels.
    optimizer : {"sgd", "muon"} or None, default=None
        What trains the weights: "sgd", SGD with Nesterov momentum, or "muon", Muon for the
        convolution filters (their momentum orthogonalised, their norm fixed; ``muon.NesterovSGD.filter_muon``)
        and SGD for the rest.
    momentum : float in [0, 1), default=0.9
        SGD's (Nesterov) momentum.
    weight_decay : float ≥ 0, default=5e-4
        SGD's L2 weight decay (with optimizer="muon", not of the filters, whose norm Muon fixes).
    filter_learning_rate : float > 0, default=0.06
        With optimizer="muon", the filters' peak learning rate (on the same one-cycle schedule).
    filter_momentum : float in [0, 1), default=0.8
        With optimizer="muon", the filters' (Nesterov) momentum.
    warmup : float in [0, 1), default=0.2
        The share of the steps over which the learning rate rises linearly from 0 to its peak.
    label_smoothing : float in [0, 1], default=0.1
        The target probability moved from the true class to all classes evenly.
    flip : bool or "auto", default="auto"
        Random horizontal flips while training; "auto" flips where a mirror image keeps its class, as a run reads in
        its dataset's description (Fashion-MNIST's; not MNIST's or KMNIST's, whose digits and characters it costs
        accuracy) and records as True or False. A fit outside a run, not told, flips.
    tta : bool, default=True
        At test time, average the logits of each image and its mirror image (only with flip).
    precision : {"auto", "bfloat16", "float32"}, default="auto"
        The training steps' precision. "auto" is bfloat16 autocast where the device computes
        it natively, else float32. Predictions are always computed in float32.
    """

    family = "cnn"
    channels_last = True
    _parameter_constraints = {
        **TorchClassifier._parameter_constraints,
        "preset": [StrOptions(set(PRESETS))],
        "epochs": [Interval(Integral, 1, None, closed="left"), None],
        "widths": [PositiveInts(1, MAX_STAGES), None],
        "pool": [StrOptions(set(POOLS)), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "crop": [Interval(Integral, 0, MAX_CROP, closed="both"), None],
        "whiten": ["boolean", None],
        "optimizer": [StrOptions(set(OPTIMIZERS)), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "filter_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "filter_momentum": [Interval(Real, 0, 1, closed="left")],
        "warmup": [Interval(Real, 0, 1, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="both")],
        "flip": ["boolean", StrOptions({"auto"})],
        "tta": ["boolean"],
        "precision": [StrOptions(set(PRECISIONS))],
    }
    _used_only_when = {**dict.fromkeys(("filter_learning_rate", "filter_momentum"),
                                       {"optimizer": frozenset({"muon"})}),  # the preset's optimizer, if not given
                       "tta": {"flip": frozenset({True})}}

    def __init__(self, preset="fast", epochs=None, widths=None, pool=None, batch_size=None, learning_rate=None,
                 crop=None, whiten=None, optimizer=None, momentum=0.9, weight_decay=5e-4, filter_learning_rate=0.06,
                 filter_momentum=0.8, warmup=0.2, label_smoothing=0.1, flip="auto", tta=True, precision="auto",
                 validation_fraction=0.0, device="auto", random_state=None, checkpoint_dir=None, threads=None):
        self.preset = preset
        self.epochs = epochs
        self.widths = widths
        self.pool = pool
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.crop = crop
        self.whiten = whiten
        self.optimizer = optimizer
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.filter_learning_rate = filter_learning_rate
        self.filter_momentum = filter_momentum
        self.warmup = warmup
        self.label_smoothing = label_smoothing
        self.flip = flip
        self.tta = tta
        self.precision = precision
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.checkpoint_dir = checkpoint_dir
        self.threads = threads

    def _setting(self, name: str):
        """The parameter if given, else the preset's value."""
        value = getattr(self, name)
        return PRESETS[self.preset][name] if value is None else value

    def resolved_params(self) -> dict:
        # A checkpoint records what the preset meant when it was written, not just its name.
        return (self.get_params(deep=False) | {name: self._setting(name) for name in PRESETS[self.preset]}
                | {"flip": self._flip()})

    def _flip(self) -> bool:
        """Whether the fit flips: "auto" that no run resolved flips, as the presets were tuned to on Fashion-MNIST."""
        return True if isinstance(self.flip, str) else bool(self.flip)

    def _former_settings(self) -> dict[str, tuple[object, str]]:
        # every fit flipped before flip="auto" (a39e09e): an MNIST run's checkpoint from then holds flip=True, which
        # the same command, "auto" now False there, refused as "a fit with other parameters or data" without which;
        # a flip=False given is the user's own choice, not a default that changed
        return {"flip": (True, "the default before 'auto', which flips only where a mirror image keeps its "
                               "class")} if self.flip is False and self._flip_off_on else {}

    _flip_off_on: str | None = None  # the dataset that resolved flip="auto" to False, which the user never gave

    def suit_dataset(self, dataset: DatasetSpec) -> None:
        # On MNIST (5,000 training images, lr 0.1, batch 64) flips made 60% more errors: 0.9723 against 0.9847
        self._flip_off_on = None  # a flip given since an earlier resolution is the user's
        if isinstance(self.flip, str):
            self.set_params(flip=dataset.mirror_keeps_class)
            self._flip_off_on = None if dataset.mirror_keeps_class else dataset.name

    def unused_parameters(self) -> dict[str, str]:
        why = super().unused_parameters()
        if "tta" in why and self.flip is False and self._flip_off_on:
            # --tta false on MNIST was 'ignored (used only when flip is True)', where the user gave no flip
            why["tta"] += (f"; flip='auto' is False on {self._flip_off_on}, whose mirror images change their "
                           "class")
        return why

    def _said(self, name: str) -> str:
        """``name=value`` as the fit takes it, said to be the preset's where it is: a refusal of a setting the user
        never gave ("with pool='between' at most 3 stages" for --widths 8,8,8,8) left them looking for it."""
        text = f"{name}={self._setting(name)!r}"
        return text if getattr(self, name) is not None else f"the {self.preset} preset's {text}"

    def _widths(self) -> tuple[int, ...]:
        return tuple(int(w) for w in self._setting("widths"))

    def _check_rules(self) -> None:
        """That pooling between the convolutions leaves at least 3×3 pixels, and that whitening has a filter
        for each of the first stage's channels."""
        widths = self._widths()
        if self._setting("pool") == "between" and len(widths) > MAX_STAGES - 1:
            raise ParameterError("widths", f"with {self._said('pool')} at most {MAX_STAGES - 1} stages (28 → 14 → 7 → "
                                           f"3), with pool='after', {MAX_STAGES}; got {len(widths)}")
        if self._setting("whiten") and widths[0] > 2 * PATCH_DIRECTIONS:
            # named by what the user gave: --widths 32,64 alone was refused as '--whiten: …', a flag never given
            # (the fast preset's whitening); whiten where it is given (the presets' own widths all fit)
            given = "whiten" if self.whiten is not None else "widths"
            raise ParameterError(given, f"whitening ({self._said('whiten')}) fixes at most {2 * PATCH_DIRECTIONS} "
                                        "filters (a 3×3 patch's directions and their negatives), and the first "
                                        f"stage has {widths[0]} channels; pass whiten=False or a first width of at "
                                        "most 18")

    def _fit_memory(self):
        # a stage's two 3×3 convolutions and two batch norms' scales and shifts, then the head; each weight's
        # float32 value, gradient and momentum
        widths, channels, weights = self._widths(), 1, 0
        for width in widths:
            weights += 9 * channels * width + 9 * width * width + 4 * width
            channels = width
        return "widths", weights + channels * N_CLASSES, 4 * 3

    def _build_network(self, n_classes: int) -> nn.Module:
        return network(self._widths(), n_classes, self._setting("pool"))

    def _initialise(self, network: nn.Module, images: torch.Tensor) -> None:
        if self._setting("whiten"):
            first = network.stage0[0]
            with torch.no_grad():
                first.weight.copy_(whitening_filters(images, first.out_channels))
            first.weight.requires_grad_(False)  # no gradient, so the optimiser leaves it (and its decay) alone

    def _make_optimizer(self, network: nn.Module) -> NesterovSGD:
        if self._setting("optimizer") == "muon":
            return NesterovSGD.filter_muon(network, peak_lr=self._setting("learning_rate"),
                                           filter_lr=self.filter_learning_rate, momentum=self.momentum,
                                           filter_momentum=self.filter_momentum, weight_decay=self.weight_decay)
        return NesterovSGD.sgd(network, momentum=self.momentum, weight_decay=self.weight_decay)

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
        if self._flip():
            images = random_flip(images, generator)
        return images

    def _autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        if self.precision == "bfloat16" or (self.precision == "auto" and computes_bfloat16(device)):
            return torch.bfloat16
        return None

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def _predict_logits(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        logits = network(images)
        if self.tta and self._flip():
            logits = (logits + network(images.flip(-1))) / 2
        return logits
