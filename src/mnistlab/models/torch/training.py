"""The training loop shared by the PyTorch models (lenet, cnn), and their common plumbing.

A model file says only what is particular to it: the network, the optimiser,
the learning-rate schedule and, optionally, the loss, the augmentation and
test-time logits. This base class does everything else the same way for all
of them: data as tensors on the device, seeding, per-epoch shuffling, the
validation split, the progress display, the per-epoch history, checkpoints
and resume, weights as named arrays, predict and explain.

Hooks a model implements (``torch`` is imported only by these modules):

``_build_network(n_classes)``        -> nn.Module taking N×1×28×28 float32 in [0, 1], giving logits
``_make_optimizer(network)``         -> torch.optim.Optimizer
``_learning_rate(step, total_steps)`` -> learning rate of optimiser step ``step`` (0-based); a pure
                                        function of the step, so a resumed run needs no scheduler
                                        state beyond the epoch counter
``_epochs()``                        -> number of epochs
``_batch_size()``                    -> examples per step
optional: ``_augment(images, generator)`` (a whole epoch's images at once; default: none),
``_loss(logits, y)`` (default: cross-entropy), ``_predict_logits(network, images)``
(default: one forward pass; e.g. test-time augmentation), ``channels_last`` (memory format
of network and images), ``_autocast_dtype(device)`` (lower precision for the training steps'
forward pass, e.g. bfloat16; default: None, float32 throughout), ``_settings()`` (the
parameters as training uses them, which a checkpoint must match; default: ``get_params()``,
a family with presets resolves them).

Reproducibility: all randomness comes from ``random_state`` and the epoch
number — the initial weights from (seed, INIT), the validation split from
(seed, SPLIT), each epoch's shuffling and augmentation from (seed, DATA, epoch)
and its dropout from (seed, DROPOUT, epoch) — so a run resumed from the
checkpoint of epoch e draws exactly what the uninterrupted run drew, and ends
with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from ..._io import atomic_write_bytes
from ...data import preprocess
from ..base import MnistlabModel

IMAGE_SHAPE = (1, 28, 28)
DEVICES = ("auto", "cpu", "cuda")
INIT, SPLIT, DATA, DROPOUT = range(4)  # what a derived seed is for
CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "mnistlab-checkpoint-1"
# Parameters that change how a run is executed or displayed, not what it computes:
# a checkpoint written under other values of these is still resumed.
NOT_FINGERPRINTED = ("verbose", "checkpoint_dir", "device")
STATE_PREFIX = "state."
PREDICT_BATCH = 1024


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when present, else the CPU; asking for absent CUDA is an error."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but PyTorch sees no CUDA GPU; use device='auto' or 'cpu'")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def computes_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` has bfloat16 arithmetic in hardware (a recent GPU; a CPU with
    AVX-512 BF16 or AMX); elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def derived_seed(seed: int, purpose: int, epoch: int = 0) -> int:
    """An independent 63-bit seed for one purpose (and epoch) of a run."""
    return int(np.random.SeedSequence([seed, purpose, epoch]).generate_state(2, np.uint64)[0] >> 1)


@contextmanager
def reproducible():
    """cuDNN's deterministic kernels for the duration, so that a seed fixes the result on a
    GPU as it does on the CPU (where this changes nothing)."""
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


@contextmanager
def seeded(seed: int, device: torch.device):
    """Seed PyTorch's global generator (used by weight init and dropout) without
    disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


class TorchClassifier(MnistlabModel):
    """Base class of the PyTorch models; see the module docstring for the hooks.

    Parameters every subclass has (and repeats in its ``__init__``, because
    scikit-learn reads an estimator's parameters from its signature):

    validation_fraction : hold out this stratified share of the training data and record
        its loss and accuracy each epoch (0: none).
    device : "auto" (CUDA when present, else CPU), "cpu" or "cuda".
    random_state : seeds everything (see the module docstring); same seed, same result on a given
        machine (on a GPU too: cuDNN runs its deterministic kernels).
        None draws a seed, which a checkpoint remembers.
    checkpoint_dir : folder for a checkpoint written (atomically) after every epoch;
        a later ``fit`` with the same parameters and data continues from it. None: no checkpoints.
    verbose : progress bar on stderr (epoch, batch, loss, accuracy, time left).

    Fitted: ``classes_``, ``network_`` (the torch module), ``n_iter_`` (epochs) and
    ``history_`` with per-epoch "train_loss", "train_accuracy" (running means over the
    epoch's batches, with augmentation and dropout on; the loss is the training objective)
    and "val_loss" (cross-entropy), "val_accuracy".
    In model files the weights are the arrays ``state.<state_dict key>``.
    """

    can_explain = True

    channels_last = False

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

    def _augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return images

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y)

    def _predict_logits(self, network: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        return network(images)

    def _autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        return None

    def _settings(self) -> dict:
        """The parameters as training uses them (a family with presets resolves them here)."""
        return self.get_params(deep=False)

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y, progress=None):
        X, y = check_X_y(X, y, dtype=np.float32)
        if X.shape[1] != int(np.prod(IMAGE_SHAPE)):
            raise ValueError(f"{self.family} takes 28×28 images as rows of 784 pixels, got {X.shape[1]} columns")
        self.classes_, y = np.unique(y, return_inverse=True)
        device = resolve_device(self.device)
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        epochs, batch_size = self._epochs(), self._batch_size()

        checkpoint = Checkpoint(self.checkpoint_dir, self._fingerprint(X, y)) if self.checkpoint_dir else None
        saved = checkpoint.load() if checkpoint else None
        if saved is not None:
            seed = saved.seed
        elif self.random_state is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        else:
            seed = int(self.random_state)

        X_val = y_val = None
        if self.validation_fraction > 0:
            X, X_val, y, y_val = preprocess.validation_split(
                X, y, fraction=self.validation_fraction, seed=derived_seed(seed, SPLIT) % 2**32)
            X_val, y_val = self._images(X_val, device), torch.from_numpy(y_val).to(device)
        images, labels = self._images(X, device), torch.from_numpy(y).to(device)

        with seeded(derived_seed(seed, INIT), device):
            network = self._network(len(self.classes_), device)
        optimizer = self._make_optimizer(network)
        history = {"train_loss": [], "train_accuracy": []}
        if X_val is not None:
            history.update(val_loss=[], val_accuracy=[])
        first_epoch = 0
        if saved is not None:
            first_epoch, history = saved.restore(network, optimizer)

        steps_per_epoch = -(-len(labels) // batch_size)
        with _progress(self.verbose, total=epochs * steps_per_epoch, done=first_epoch * steps_per_epoch) as bar, \
                reproducible():
            if bar and first_epoch:
                bar.console.print(f"resuming after epoch {first_epoch} from {checkpoint.path}", highlight=False)
            for epoch in range(first_epoch, epochs):
                started = time.perf_counter()
                generator = torch.Generator().manual_seed(derived_seed(seed, DATA, epoch))
                with seeded(derived_seed(seed, DROPOUT, epoch), device):
                    loss, accuracy = self._train_epoch(network, optimizer, images, labels, generator,
                                                       epoch, epochs, batch_size, bar)
                history["train_loss"].append(loss)
                history["train_accuracy"].append(accuracy)
                line = f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}  acc {accuracy:.4f}"
                if X_val is not None:
                    val_loss, val_accuracy = self._evaluate(network, X_val, y_val)
                    history["val_loss"].append(val_loss)
                    history["val_accuracy"].append(val_accuracy)
                    line += f"  val_loss {val_loss:.4f}  val_acc {val_accuracy:.4f}"
                if checkpoint:
                    checkpoint.save(epoch + 1, seed, history, network, optimizer)
                if bar:
                    bar.console.print(f"{line}  ({time.perf_counter() - started:.1f} s)", highlight=False)

        self.network_ = network.eval()
        self.n_iter_ = len(history["train_loss"])
        self.history_ = history
        return self

    def _train_epoch(self, network, optimizer, images, labels, generator, epoch, epochs, batch_size, bar):
        """One pass over the shuffled, augmented data; returns (mean loss, accuracy)."""
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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            loss_sum += loss.detach() * len(batch)
            correct += (logits.detach().argmax(dim=1) == y).sum()
            if bar and (step % 10 == 0 or step == steps - 1):  # .item() waits for a GPU: not every step
                seen = min((step + 1) * batch_size, n)
                bar.update(epoch * steps + step + 1, f"epoch {epoch + 1}/{epochs}  batch {step + 1}/{steps}  "
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

    def _fingerprint(self, X: np.ndarray, y: np.ndarray) -> str:
        """What a checkpoint must match to be resumed: the family, what its parameters compute, the data."""
        params = {k: v for k, v in self._settings().items() if k not in NOT_FINGERPRINTED}
        digest = hashlib.blake2b(json.dumps([self.family, params, self.classes_.tolist()],
                                            sort_keys=True, default=str).encode())
        digest.update(np.ascontiguousarray(X).data)
        digest.update(np.ascontiguousarray(y, dtype=np.int64).data)
        return digest.hexdigest()

    # -- inference --------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "network_")
        X = check_array(X, dtype=np.float32)
        device = next(self.network_.parameters()).device
        images = self._images(X, device)
        self.network_.eval()
        with torch.no_grad(), reproducible():
            logits = torch.cat([self._predict_logits(self.network_, images[i:i + PREDICT_BATCH])
                                for i in range(0, len(images), PREDICT_BATCH)])
        return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def explain(self, X) -> np.ndarray:
        """Gradient × input: ∂logit_k/∂x · x for every class k and pixel, shape N×classes×784.

        To first order, how much each pixel's value pushes each class's score (of the
        same logits predict uses, test-time augmentation included) up or down.
        """
        check_is_fitted(self, "network_")
        X = check_array(X, dtype=np.float32)
        device = next(self.network_.parameters()).device
        self.network_.eval()
        maps = []
        with reproducible():
            for start in range(0, len(X), PREDICT_BATCH):
                images = self._images(X[start:start + PREDICT_BATCH], device).requires_grad_(True)
                logits = self._predict_logits(self.network_, images)
                grads = [torch.autograd.grad(logits[:, k].sum(), images, retain_graph=True)[0]
                         for k in range(logits.shape[1])]
                maps.append((torch.stack(grads, dim=1) * images.detach().unsqueeze(1))
                            .reshape(len(images), logits.shape[1], -1).cpu().numpy())
        return np.concatenate(maps)

    # -- model files: the state_dict as named arrays ----------------------------------------
    def get_arrays(self) -> dict[str, np.ndarray]:
        check_is_fitted(self, "network_")
        state = {STATE_PREFIX + key: value.detach().cpu().contiguous().numpy()
                 for key, value in self.network_.state_dict().items()}
        return {"classes_": np.asarray(self.classes_), **state}

    def set_arrays(self, arrays: dict[str, np.ndarray]) -> TorchClassifier:
        if "classes_" not in arrays:
            raise ValueError("model file lacks arrays: classes_")
        classes = np.asarray(arrays["classes_"])
        # a model trained on a GPU loads onto the CPU where there is none
        device = resolve_device("auto" if self.device == "cuda" else self.device)
        network = self._network(len(classes), device)
        load_state(network, {key[len(STATE_PREFIX):]: value for key, value in arrays.items()
                             if key.startswith(STATE_PREFIX)})
        self.classes_, self.network_ = classes, network.eval()
        return self


def load_state(network: torch.nn.Module, arrays: dict[str, np.ndarray | torch.Tensor]) -> None:
    """Copy named arrays into ``network``; any missing, extra or misshapen one is a ValueError."""
    expected = network.state_dict()
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"weights do not fit the network: missing {missing or 'none'}, "
                         f"unexpected {extra or 'none'}")
    state = {}
    for key, target in expected.items():
        value = torch.as_tensor(np.asarray(arrays[key]) if not torch.is_tensor(arrays[key]) else arrays[key])
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"weights do not fit the network: {key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(target.shape)}")
        state[key] = value.to(target.dtype)
    network.load_state_dict(state)


class Checkpoint:
    """The state after a completed epoch, in one safetensors file (no pickle), written atomically.

    Tensors: ``model.<state_dict key>`` and ``optimizer.<param index>.<state key>``;
    metadata (strings): format, fingerprint, epochs done, seed and history (JSON).
    The learning-rate schedule is a function of the step, so the epoch counter is its state.
    """

    def __init__(self, directory, fingerprint: str):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.fingerprint = fingerprint
        self.tensors: dict[str, torch.Tensor] = {}
        self.meta: dict[str, str] = {}

    def save(self, epoch: int, seed: int, history: dict, network, optimizer) -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        for index, state in optimizer.state_dict()["state"].items():
            tensors.update({f"optimizer.{index}.{k}": v.detach().cpu().contiguous()
                            for k, v in state.items() if torch.is_tensor(v)})
        meta = {"format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint, "epoch": str(epoch),
                "seed": str(seed), "history": json.dumps(history)}
        atomic_write_bytes(self.path, safetensors_bytes(tensors, metadata=meta))

    def load(self) -> Checkpoint | None:
        """This checkpoint if one for the same fingerprint exists, else None (it will be overwritten)."""
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != CHECKPOINT_FORMAT or meta.get("fingerprint") != self.fingerprint:
                    return None
                self.tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (OSError, SafetensorError):
            return None  # unreadable (e.g. truncated): start afresh
        self.meta = meta
        return self

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    def restore(self, network, optimizer) -> tuple[int, dict]:
        """Put the saved state into ``network`` and ``optimizer``; return (epochs done, history)."""
        load_state(network, {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")})
        state: dict[int, dict] = {}
        for key, value in self.tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        optimizer_state = optimizer.state_dict()
        optimizer_state["state"] = state
        optimizer.load_state_dict(optimizer_state)
        return int(self.meta["epoch"]), json.loads(self.meta["history"])


class _Bar:
    """One rich progress bar for the whole fit, with time left; epoch summaries print above it."""

    def __init__(self, progress: Progress, task):
        self.progress, self.task, self.console = progress, task, progress.console

    def update(self, completed: int, description: str) -> None:
        self.progress.update(self.task, completed=completed, description=description)


@contextmanager
def _progress(verbose: bool, total: int, done: int):
    """A progress display on stderr (stdout stays clean for results), or None."""
    if not verbose:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        yield _Bar(progress, progress.add_task("starting", total=total, completed=done))
