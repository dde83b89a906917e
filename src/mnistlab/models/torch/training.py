"""The training loop shared by the PyTorch models (lenet, cnn).

A model file says only what is particular to it: the network, the optimiser,
the learning-rate schedule and, optionally, the loss, the augmentation and
test-time logits. This base class does everything else the same way for all
of them: data as tensors on the device, seeding, per-epoch shuffling, the
validation split, progress reports (``fit(X, y, progress=...)``), the
per-epoch history, checkpoints and resume, weights as named arrays, predict
and explain. The device, seeding and determinism are in ``device``, the
checkpoint file and ``load_state`` in ``checkpoint``.

Hooks a model implements (``torch`` is imported only by these modules):

``_build_network(n_classes)``        -> nn.Module taking N×1×28×28 float32 in [0, 1], giving logits
``_make_optimizer(network)``         -> a torch.optim.Optimizer, or what the loop and checkpoints
                                        use of one: ``param_groups`` (their ``lr`` set per step),
                                        ``zero_grad``, ``step``, ``state_dict``/``load_state_dict``
``_learning_rate(step, total_steps)`` -> learning rate of optimiser step ``step`` (0-based); a pure
                                        function of the step, so a resumed run needs no scheduler
                                        state beyond the epoch counter
``_epochs()``                        -> number of epochs
``_batch_size()``                    -> examples per step
optional: ``_initialise(network, images)`` (what the network takes from the training images
before the optimiser is made, e.g. fixed filters; default: nothing),
``_augment(images, generator)`` (a whole epoch's images at once; default: none),
``_loss(logits, y)`` (default: cross-entropy), ``_predict_logits(network, images)``
(default: one forward pass; e.g. test-time augmentation), ``channels_last`` (memory format
of network and images), ``_autocast_dtype(device)`` (lower precision for the training steps'
forward pass, e.g. bfloat16; default: None, float32 throughout), ``resolved_params()`` (the
base class's: the parameters as training uses them, which a checkpoint must match; a family with
presets resolves them), ``_former_settings()`` (values an earlier version took for
what is now given, which a refused checkpoint is tested against to say which one resumes it).

Reproducibility: all randomness comes from ``random_state`` and the epoch
number — the initial weights from (seed, INIT), the validation split from
(seed, SPLIT), each epoch's shuffling and augmentation from (seed, DATA, epoch)
and its dropout from (seed, DROPOUT, epoch) — so a run resumed from the
checkpoint of epoch e draws exactly what the uninterrupted run drew, and ends
with the same weights.

CPU threads: the sums inside PyTorch's kernels are split among its threads,
so on the CPU a seed fixes the result for a given thread count. ``threads``
None chooses the count when a fit starts — the cores no other process is busy
on, so that a busy neighbour does not make the steps slower than one thread
would — records it as ``threads_``, and a resumed fit uses the checkpoint's.
Predictions (and features and explanations) choose their count at each call in the
same way: their results do not depend on it, and OpenMP's threads, which spin
briefly while they wait (``models/torch/__init__``), are slower beside a busy
process than one thread (benchmarks/bench_threads.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F

from ..._io import signals_deferred
from ...callbacks import SILENT, ThinnedLog, started
from ...errors import DivergedError, OtherFitsCheckpointError, ParameterError, one_line
from ...data.preprocess import held_out
from ...data.registry import IMAGE_SIDE
from .._fitting import finite_proba, reporter
from ..base import MnistlabModel
from ..params import MAX_THREADS, SEED_OR_NONE, Interval, StrOptions
from ..validation import check_features, check_fitted, check_labels, fit_features, set_learned
from .checkpoint import Checkpoint, check_state, load_state
from .device import (DEVICES, allocation_failures_as_memory_error, available_threads, cpu_threads, derived_seed,
                     prediction_threads, reproducible, resolve_device, seeded)

IMAGE_SHAPE = (1, IMAGE_SIDE, IMAGE_SIDE)
INIT, SPLIT, DATA, DROPOUT = range(4)  # what a derived seed is for
# Parameters that change where a run is executed, not what it computes:
# a checkpoint written under other values of these is still resumed.
NOT_FINGERPRINTED = ("checkpoint_dir", "device", "threads")
STATE_PREFIX = "state."
PREDICT_BATCH = 1024
PROGRESS_EVERY = 10  # steps between progress reports: reading the loss waits for a GPU
# optimiser steps below which a network has barely begun to learn: the fast CNN preset on 2,000 images
# (24 steps) scored near chance, 0.19, without a word
FEW_STEPS = 100
# what a fit's history keeps, without and with a validation split
HISTORY_KEYS = {False: ("train_loss", "train_accuracy"),
                True: ("train_loss", "train_accuracy", "val_loss", "val_accuracy")}


class TorchClassifier(MnistlabModel):
    """Base class of the PyTorch models; see the module docstring for the hooks.

    Every subclass has the parameters below, and repeats them in its ``__init__``,
    because scikit-learn reads an estimator's parameters from its signature.

    Parameters
    ----------
    validation_fraction : float in [0, 1), default=0.0
        The stratified share of the training data held out, whose loss and accuracy are
        recorded each epoch (0: none).
    device : {"auto", "cpu", "cuda"}, default="auto"
        Where to train: "auto" is CUDA when present, else the CPU.
    random_state : int or None, default=None
        Seed of everything (see the module docstring); same seed, same result on a given
        machine with the same CPU ``threads`` (on a GPU too: cuDNN runs its deterministic
        kernels). None draws a seed, which a checkpoint remembers.
    checkpoint_dir : str or None, default=None
        Folder for a checkpoint written (atomically) after every epoch. A later ``fit`` with
        the same parameters and data continues from it. None: no checkpoints.
    threads : int in [1, 1024] or None, default=None
        PyTorch's CPU threads while fitting. None: the cores no other process is busy on when
        the fit starts, at most PyTorch's own count (see the module docstring); the count taken
        is ``threads_`` and the fit message's, and a fit repeated exactly gives it.

    Attributes
    ----------
    ``classes_``, ``network_`` (the torch module), ``n_iter_`` (epochs), ``threads_`` (the CPU
    threads the fit used), ``fit_message_`` (epochs and where they ran) and
    ``history_`` with per-epoch "train_loss", "train_accuracy" (running means over the
    epoch's batches, with augmentation and dropout on) and "val_loss", "val_accuracy"; both
    losses are the cross-entropy (without the objective's label smoothing).
    In model files the weights are the arrays ``state.<state_dict key>``.
    """

    can_explain = True
    can_checkpoint = True  # checkpoint_dir
    channels_last = False
    _parameter_constraints = {
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "device": [StrOptions(set(DEVICES))],
        "random_state": SEED_OR_NONE,
        "checkpoint_dir": [str, None],
        "threads": [Interval(Integral, 1, MAX_THREADS, closed="both"), None],
    }

    # -- hooks (see the module docstring) -------------------------------------------------
    def _build_network(self, n_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    def _make_optimizer(self, network: torch.nn.Module) -> torch.optim.Optimizer:
        raise NotImplementedError

    def _learning_rate(self, step: int, total_steps: int) -> float:
        raise NotImplementedError

    def _epochs(self) -> int:
        raise NotImplementedError

    def _batch_size(self) -> int:
        raise NotImplementedError

    def _initialise(self, network: torch.nn.Module, images: torch.Tensor) -> None:
        pass

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def _predict_logits(self, network: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        return network(images)

    def _former_settings(self) -> dict[str, tuple[object, str]]:
        """Settings an earlier version of the family took for what this one is given (a default since resolved
        otherwise), each as parameter → (that value, why): a checkpoint of one is refused naming it."""
        return {}

    def _autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        return None

    # -- training ---------------------------------------------------------------------------
    @allocation_failures_as_memory_error()
    def fit(self, X, y, progress=None):
        self.validate_params()
        self.check_fit_memory()
        progress = reporter(progress)
        if np.ndim(X) == 2 and np.shape(X)[1] != int(np.prod(IMAGE_SHAPE)):  # said in the network's own terms
            raise ParameterError(None, f"{self.family} takes 28×28 images as rows of 784 pixels, "
                                       f"got {np.shape(X)[1]} columns")
        X, features = fit_features(self, X)
        y = check_labels(self, y, len(X))
        classes, y = np.unique(y, return_inverse=True)  # classes_ is set with the network: a fit that fails
        # leaves the model as it was, not an earlier network answering with these labels
        device = resolve_device(self.device)
        epochs, batch_size = self._epochs(), self._batch_size()

        checkpoint = Checkpoint(self.checkpoint_dir, self._fingerprint(X, y, classes)) if self.checkpoint_dir else None
        saved = None
        if checkpoint:
            with torch.device("meta"):  # the state's names and shapes, without memory or random numbers
                shape_of = self._build_network(len(classes))
            try:
                saved = checkpoint.load(epochs, {k: tuple(v.shape) for k, v in shape_of.state_dict().items()},
                                        len(list(shape_of.parameters())),
                                        set(HISTORY_KEYS[self.validation_fraction > 0]))
            except OtherFitsCheckpointError:
                # a setting whose meaning changed since (a default now resolved otherwise): the same command no
                # longer resumes its checkpoint, and "give the settings it was written with" did not say which
                for name, (value, why) in self._former_settings().items():
                    if checkpoint.written_for == self._fingerprint(X, y, classes, {name: value}):
                        raise OtherFitsCheckpointError(f"{checkpoint.path} holds the epochs of a fit with "
                                                       f"{name}={value!r} ({why}): resume it with {name}={value!r}, "
                                                       "or remove it to start afresh", name) from None
                raise
        if checkpoint and checkpoint.unusable:
            progress.log(f"not resuming: {checkpoint.unusable}; starting afresh")
        if saved is not None:
            if device.type == "cpu" and self.threads is not None and saved.threads and self.threads != saved.threads:
                raise ParameterError("threads", f"the checkpointed epochs ran on {saved.threads} CPU threads, and "
                                                f"resuming them exactly needs as many: give {saved.threads} or none")
            seed, threads = saved.seed, saved.threads or torch.get_num_threads()
        else:
            seed = int(np.random.SeedSequence().generate_state(1)[0] if self.random_state is None
                       else self.random_state)
            # the readings take ~50 ms: on a GPU, where the steps do not run on these threads, PyTorch's count;
            # int(): a grid's np.int64 (GridSearchCV's, a sweep's) made threads_ and the fit message's plural NumPy's
            threads = int(self.threads or (available_threads(readings=10) if device.type == "cpu"
                                           else torch.get_num_threads()))

        X_val = y_val = None
        if self.validation_fraction > 0:
            X, X_val, y, y_val = held_out(X, y, self.validation_fraction, derived_seed(seed, SPLIT) % 2**32,
                                          "validation_fraction", classes)
            X_val, y_val = self._images(X_val, device), torch.from_numpy(y_val).to(device)
        images, labels = self._images(X, device), torch.from_numpy(y).to(device)

        with seeded(derived_seed(seed, INIT), device):
            network = self._network(len(classes), device)
        self._initialise(network, images)
        # The first torch.optim optimiser imports torch._dynamo and SymPy (4 s): interrupted there, SymPy was left
        # half-imported for the kernel's life ("module 'sympy' has no attribute 'printing'"), as in get_family
        with signals_deferred():
            optimizer = self._make_optimizer(network)
        history = {key: [] for key in HISTORY_KEYS[X_val is not None]}
        first_epoch, trained_seconds = 0, 0.0
        if saved is not None:
            try:
                first_epoch, history = saved.restore(network, optimizer)
                trained_seconds = saved.seconds or 0.0
            except ValueError as exc:  # raised before anything was put: the fit starts afresh from here
                checkpoint.unusable = f"{checkpoint.path} is damaged ({one_line(exc)})"
                progress.log(f"not resuming: {checkpoint.unusable}; starting afresh")

        steps_per_epoch = -(-len(labels) // batch_size)
        with started(progress, epochs * steps_per_epoch, "step"):
            if first_epoch:
                progress.advance(first_epoch * steps_per_epoch, f"resumed after epoch {first_epoch}")
                progress.log(f"resuming after epoch {first_epoch} from {checkpoint.path}")
            if device.type == "cpu" and self.threads is None and threads < torch.get_num_threads():
                why = "as the checkpointed epochs did" if first_epoch else "other processes are busy"
                progress.log(f"training on {threads} of {torch.get_num_threads()} CPU threads ({why})")
            log = ThinnedLog(progress, epochs)
            with reproducible(), cpu_threads(threads):
                for epoch in range(first_epoch, epochs):
                    epoch_start = time.perf_counter()
                    generator = torch.Generator().manual_seed(derived_seed(seed, DATA, epoch))
                    try:
                        with seeded(derived_seed(seed, DROPOUT, epoch), device):
                            loss, accuracy = self._train_epoch(network, optimizer, images, labels, generator,
                                                               epoch, epochs, batch_size, progress)
                    except RuntimeError as exc:  # a step past float32's range: Adam's lr / (1 − β₁ᵗ), say
                        if "without overflow" not in str(exc):
                            raise
                        loss = math.inf
                    if not math.isfinite(loss):  # no later epoch would bring it back
                        raise DivergedError(self.family, f"its loss in epoch {epoch + 1} is not finite")
                    history["train_loss"].append(loss)
                    history["train_accuracy"].append(accuracy)
                    line = f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}  acc {accuracy:.4f}"
                    if X_val is not None:
                        val_loss, val_accuracy = self._evaluate(network, X_val, y_val)
                        history["val_loss"].append(val_loss)
                        history["val_accuracy"].append(val_accuracy)
                        line += f"  val_loss {val_loss:.4f}  val_acc {val_accuracy:.4f}"
                    seconds = time.perf_counter() - epoch_start
                    trained_seconds += seconds
                    if checkpoint:
                        checkpoint.save(epoch + 1, epochs, seed, threads, trained_seconds, history, network, optimizer)
                    log.add(epoch + 1, f"{line}  ({seconds:.1f} s)")
                log.flush()
                # each epoch's loss is computed before its steps: one that diverged at the last step shows only in
                # what the network now gives (lenet at learning_rate=1e20 for one step predicted NaN, said nothing)
                network.eval()
                with torch.no_grad():
                    logits = self._predict_logits(network, images[:batch_size])
                finite_proba(torch.softmax(logits.double(), dim=1).cpu().numpy(), self.family)

        set_learned(self, {**features, "classes_": classes, "network_": network.eval()})
        self.n_iter_ = len(history["train_loss"])
        self.history_ = history
        self.threads_ = threads
        self.fit_message_ = self._fit_message(device, threads, steps_per_epoch, first_epoch,
                                              saved.seconds if first_epoch else None,
                                              checkpoint.unusable if checkpoint else None)
        return self

    def _fit_message(self, device: torch.device, threads: int, steps_per_epoch: int, first_epoch: int,
                     seconds_before: float | None, not_resumed: str | None) -> str:
        """How many epochs ran, where, whether they resumed (after ``first_epoch``) or could not (why:
        ``not_resumed``), and whether the steps were too few to learn much."""
        where = f"{threads} CPU thread{'s' * (threads > 1)}" if device.type == "cpu" else str(device)
        message = f"{self.n_iter_} epoch{'s' * (self.n_iter_ != 1)} on {where}"
        if first_epoch:  # the run's fit time is this process's: say what the epochs before it took
            before = f" ({seconds_before:.1f} s of training before)" if seconds_before is not None else ""
            message += f", resumed after epoch {first_epoch}{before}"
        elif not_resumed:  # said with the result too: a log line is lost without a bar (--json)
            message += f"; not resumed ({not_resumed}): started afresh"
        if (steps := self.n_iter_ * steps_per_epoch) < FEW_STEPS:
            message += (f"; only {steps} optimiser steps, too few to learn much: more images or epochs, "
                        "or a smaller batch_size")
        return message

    def _train_epoch(self, network, optimizer, images, labels, generator, epoch, epochs, batch_size, progress):
        """One pass over the shuffled, augmented data; returns (mean cross-entropy, accuracy)."""
        n = len(labels)
        order = torch.randperm(n, generator=generator).to(images.device)
        epoch_images = self._augment(images, generator)
        steps = -(-n // batch_size)
        autocast = self._autocast_dtype(images.device)
        loss_sum = torch.zeros((), device=images.device)
        correct = torch.zeros((), dtype=torch.long, device=images.device)
        network.train()
        for step in range(steps):
            batch = order[step * batch_size:(step + 1) * batch_size]
            x, y = epoch_images[batch], labels[batch]
            lr = self._learning_rate(epoch * steps + step, epochs * steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(images.device.type, dtype=autocast, enabled=autocast is not None):
                logits = network(x)
            loss = self._loss(logits.float(), y)
            optimizer.zero_grad()  # gradients dropped, not zero-filled (torch's default)
            loss.backward()
            optimizer.step()

            # the cross-entropy, as val_loss is: the objective's label smoothing alone keeps it above ~0.5
            loss_sum += F.cross_entropy(logits.detach().float(), y, reduction="sum")
            correct += (logits.detach().argmax(dim=1) == y).sum()
            # .item() waits for a GPU: only every few steps, and only when someone is listening
            if progress is not SILENT and (step % PROGRESS_EVERY == 0 or step == steps - 1):
                seen = min((step + 1) * batch_size, n)
                progress.advance(epoch * steps + step + 1, f"epoch {epoch + 1}/{epochs}  batch {step + 1}/{steps}  "
                                 f"loss {loss_sum.item() / seen:.4f}  acc {correct.item() / seen:.4f}")
        return loss_sum.item() / n, correct.item() / n

    @torch.no_grad()
    def _evaluate(self, network, images, labels) -> tuple[float, float]:
        network.eval()
        logits = torch.cat([self._predict_logits(network, images[i:i + PREDICT_BATCH])
                            for i in range(0, len(images), PREDICT_BATCH)])
        return F.cross_entropy(logits, labels).item(), (logits.argmax(dim=1) == labels).float().mean().item()

    def _network(self, n_classes: int, device: torch.device) -> torch.nn.Module:
        network = self._build_network(n_classes).to(device)
        return network.to(memory_format=torch.channels_last) if self.channels_last else network

    def _images(self, X: np.ndarray, device: torch.device) -> torch.Tensor:
        """Rows of 784 pixels -> N×1×28×28 on the device (shares memory with X on the CPU)."""
        images = torch.from_numpy(np.ascontiguousarray(X)).reshape(-1, *IMAGE_SHAPE).to(device)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def _fingerprint(self, X: np.ndarray, y: np.ndarray, classes: np.ndarray, changed: dict | None = None) -> str:
        """What a checkpoint must match to be resumed: the family, what its parameters compute (with the settings
        ``changed``, if given), the data."""
        params = {k: v for k, v in (self.resolved_params() | (changed or {})).items() if k not in NOT_FINGERPRINTED}
        digest = hashlib.blake2b(json.dumps([self.family, params, classes.tolist()],
                                            sort_keys=True, default=str).encode())
        digest.update(np.ascontiguousarray(X).data)
        digest.update(np.ascontiguousarray(y, dtype=np.int64).data)
        return digest.hexdigest()

    # -- inference --------------------------------------------------------------------------
    @allocation_failures_as_memory_error()
    def predict_proba(self, X) -> np.ndarray:
        check_fitted(self, "network_")
        X = check_features(self, X)
        device = next(self.network_.parameters()).device
        images = self._images(X, device)
        self.network_.eval()
        with torch.no_grad(), reproducible(), prediction_threads():
            logits = torch.cat([self._predict_logits(self.network_, images[i:i + PREDICT_BATCH])
                                for i in range(0, len(images), PREDICT_BATCH)])
        return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: a model not fitted is NotFittedError, as scikit-learn's
        return self.classes_[proba.argmax(axis=1)]

    def features(self, X) -> np.ndarray | None:
        """What the network's last layer takes (N×features): every layer but the last, on the plain image.

        None for a network that is not an ``nn.Sequential`` ending in its logits layer.
        """
        check_fitted(self, "network_")
        if not isinstance(self.network_, torch.nn.Sequential):
            return None
        X = check_features(self, X)
        device = next(self.network_.parameters()).device
        body = self.network_[:-1]
        self.network_.eval()
        with torch.no_grad(), reproducible(), prediction_threads():
            features = [body(self._images(X[i:i + PREDICT_BATCH], device)).flatten(1)
                        for i in range(0, len(X), PREDICT_BATCH)]
        return torch.cat(features).float().cpu().numpy()

    def explain(self, X, classes=None) -> np.ndarray:
        """Gradient × input: ∂logit_k/∂x · x for every class k (or the ``classes`` asked for, indices
        into ``classes_``) and pixel, shape N×classes×784; one backward pass per class.

        To first order, how much each pixel's value pushes each class's score (of the
        same logits predict uses, test-time augmentation included) up or down.
        """
        check_fitted(self, "network_")
        X = check_features(self, X)
        explained = self._class_indices(classes)
        device = next(self.network_.parameters()).device
        self.network_.eval()
        maps = []
        with reproducible(), prediction_threads():
            for start in range(0, len(X), PREDICT_BATCH):
                images = self._images(X[start:start + PREDICT_BATCH], device).requires_grad_(True)
                logits = self._predict_logits(self.network_, images)
                grads = [torch.autograd.grad(logits[:, k].sum(), images, retain_graph=True)[0] for k in explained]
                maps.append((torch.stack(grads, dim=1) * images.detach().unsqueeze(1))
                            .reshape(len(images), len(explained), -1).cpu().numpy())
        return np.concatenate(maps)

    def onnx_graph(self):
        """PyTorch's exporter, run on what ``predict_proba`` computes: rows reshaped to images, the
        family's test-time logits (e.g. averaged with the mirror image), softmax.

        The TorchScript-based exporter (``dynamo=False``): the newer one needs onnxscript besides
        onnx, for the same graph of these plain layers. PyTorch marks the older one deprecated; when
        it goes, ``dynamo=True`` with onnxscript installed does the same here.
        """
        import copy
        import io
        import warnings

        import onnx

        from ..onnx_graphs import INPUT, OPSET, OUTPUT

        check_fitted(self, "network_")
        network = copy.deepcopy(self.network_).cpu().float().eval()  # the fitted one stays where it is
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that of the exporter chosen above
            # Only the batch size varies: the images are always IMAGE_SHAPE, so a layer's choice by
            # their size (PooledConv2d's padding) is rightly a constant of the graph.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(_Probabilities(self, network), (torch.zeros(2, int(np.prod(IMAGE_SHAPE))),),
                              buffer, dynamo=False, opset_version=OPSET, input_names=[INPUT],
                              output_names=[OUTPUT], dynamic_axes={INPUT: {0: "N"}, OUTPUT: {0: "N"}})
        return onnx.load_from_string(buffer.getvalue())

    # -- model files: the state_dict as named arrays ----------------------------------------
    def n_parameters(self) -> int:
        """The network's parameters (not its batch norms' running statistics)."""
        check_fitted(self, "network_")
        return int(sum(p.numel() for p in self.network_.parameters()))

    def get_arrays(self) -> dict[str, np.ndarray]:
        check_fitted(self, "network_")
        state = {STATE_PREFIX + key: value.detach().cpu().contiguous().numpy()
                 for key, value in self.network_.state_dict().items()}
        return {"classes_": np.asarray(self.classes_), **state}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> TorchClassifier:
        self._require_arrays(arrays, ("classes_",))
        classes = np.asarray(arrays["classes_"])
        state = {key[len(STATE_PREFIX):]: value for key, value in arrays.items() if key.startswith(STATE_PREFIX)}
        with torch.device("meta"):  # the shapes model.json's settings imply, checked before any memory is taken
            check_state({k: tuple(v.shape) for k, v in self._build_network(len(classes)).state_dict().items()}, state)
        # a model trained on a GPU loads onto the CPU where there is none
        device = resolve_device("auto" if self.device == "cuda" else self.device)
        network = self._network(len(classes), device)
        load_state(network, state)
        self.classes_, self.network_ = classes, network.eval()
        return self


class _Probabilities(torch.nn.Module):
    """``model.predict_proba`` as a module, for the exporter: rows of 784 pixels in, probabilities out."""

    def __init__(self, model: TorchClassifier, network: torch.nn.Module):
        super().__init__()
        self.model, self.network = model, network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model._predict_logits(self.network, x.reshape(-1, *IMAGE_SHAPE)), dim=1)
