"""Checkpoints of a PyTorch fit, and named arrays into a network.

A checkpoint is the state after a completed epoch in one safetensors file (no
pickle), written atomically, with a fingerprint of what the fit computes: a
later fit with the same fingerprint continues from it. Another fit replaces it
only where it is finished; an unfinished one is refused (its epochs are what a
resume of its own fit needs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..._io import atomic_write_bytes, parse_json
from ...errors import ModelFileError, OtherFitsCheckpointError, one_line

CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "mnistlab-checkpoint-1"


def check_state(shapes: dict[str, tuple[int, ...]], arrays: dict[str, np.ndarray | torch.Tensor]) -> None:
    """A ValueError unless ``arrays`` are named and shaped as a network's state of ``shapes``."""
    missing, extra = sorted(set(shapes) - set(arrays)), sorted(set(arrays) - set(shapes))
    if missing or extra:
        raise ValueError(f"weights do not fit the network: missing {missing or 'none'}, "
                         f"unexpected {extra or 'none'}")
    for key, shape in shapes.items():
        if tuple(np.shape(arrays[key])) != tuple(shape):
            raise ValueError(f"weights do not fit the network: {key} has shape {tuple(np.shape(arrays[key]))}, "
                             f"expected {tuple(shape)}")


def load_state(network: torch.nn.Module, arrays: dict[str, np.ndarray | torch.Tensor]) -> None:
    """Copy named arrays into ``network``; any missing, extra or misshapen one is a ValueError."""
    expected = network.state_dict()
    check_state({key: tuple(target.shape) for key, target in expected.items()}, arrays)
    network.load_state_dict({key: torch.as_tensor(np.asarray(arrays[key]) if not torch.is_tensor(arrays[key])
                                                  else arrays[key]).to(target.dtype)
                             for key, target in expected.items()})


class Checkpoint:
    """The state after a completed epoch, in one safetensors file (no pickle), written atomically.

    Tensors: ``model.<state_dict key>`` and ``optimizer.<param index>.<state key>``;
    metadata (strings): format, fingerprint, epochs done, seed, CPU threads, seconds those epochs took to
    train and history (JSON).
    The learning-rate schedule is a function of the step, so the epoch counter is its state.
    """

    def __init__(self, directory, fingerprint: str):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.fingerprint = fingerprint
        self.tensors: dict[str, torch.Tensor] = {}
        self.meta: dict[str, str] = {}
        self.unusable: str | None = None  # why ``load`` found nothing to resume, when a file was there
        self.written_for: str | None = None  # the fingerprint of the fit whose file ``load`` found

    def save(self, epoch: int, epochs: int, seed: int, threads: int, seconds: float, history: dict, network,
             optimizer) -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        for index, state in optimizer.state_dict()["state"].items():
            tensors.update({f"optimizer.{index}.{k}": v.detach().cpu().contiguous()
                            for k, v in state.items() if torch.is_tensor(v)})
        meta = {"format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint, "epoch": str(epoch),
                "epochs": str(epochs), "seed": str(seed), "threads": str(threads), "seconds": f"{seconds:.3f}",
                "history": json.dumps(history)}
        atomic_write_bytes(self.path, safetensors_bytes(tensors, metadata=meta))

    def load(self, epochs: int, shapes: dict[str, tuple[int, ...]], n_parameters: int,
             history_keys: set[str]) -> Checkpoint | None:
        """This checkpoint if one for the same fingerprint exists and fits a fit of ``epochs`` epochs of a
        network whose state has ``shapes`` and ``n_parameters`` parameters, and whose history keeps
        ``history_keys``, else None (it will be overwritten); ``unusable`` then says why a file that is
        there cannot be resumed. Another fit's (other parameters or data) is refused where it is unfinished."""
        if self.path.exists() and not self.path.is_file():  # it could not be saved either
            raise ModelFileError(f"{self.path}: not a file, so no checkpoint can be read or written there: remove it")
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                self.written_for = meta.get("fingerprint")
                if meta.get("format") != CHECKPOINT_FORMAT:
                    self.unusable = f"{self.path} is not an mnistlab checkpoint"
                    return None
                if meta.get("fingerprint") != self.fingerprint and meta.get("epoch") == meta.get("epochs"):
                    self.unusable = f"{self.path} is another fit's, which it finished"  # nothing of it is lost
                    return None
                if meta.get("fingerprint") != self.fingerprint:  # its epochs, overwritten by another fit's, were lost
                    raise OtherFitsCheckpointError(
                        f"{self.path} holds the epochs of a fit with other parameters or data: only that fit resumes "
                        "it, and no other replaces it; give the settings it was written with, or remove it to start "
                        "afresh")
                self.tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (OSError, SafetensorError) as exc:
            self.unusable = f"{self.path} is unreadable ({one_line(exc)})"  # e.g. truncated
            return None
        self.meta = meta
        # the same fingerprint, yet not this fit's
        if problem := self._problem(epochs, shapes, n_parameters, history_keys):
            self.unusable = f"{self.path} is damaged or from another version of this network ({problem})"
            return None
        return self

    def _problem(self, epochs: int, shapes: dict[str, tuple[int, ...]], n_parameters: int,
                 history_keys: set[str]) -> str | None:
        """What in the file does not fit the fit it would continue, or None (the optimiser state's shapes
        are checked by ``restore``, against the optimiser's own parameters)."""
        def whole(key: str, low: int, high: int) -> bool:
            text = self.meta.get(key, "")
            return text.isdecimal() and text.isascii() and low <= int(text) <= high

        if not whole("epoch", 1, epochs):
            return f"epoch {self.meta.get('epoch')!r} of {epochs}"
        if not whole("seed", 0, 2**32 - 1) or "threads" in self.meta and not whole("threads", 1, 2**16):
            return "its seed or thread count"
        if "seconds" in self.meta and not 0 <= _float(self.meta["seconds"]) < 1e9:  # NaN fails too
            return f"seconds {self.meta['seconds']!r}"
        try:
            history = parse_json(self.meta.get("history", ""))
        except ValueError:
            history = None
        epoch = int(self.meta["epoch"])
        if not (isinstance(history, dict) and set(history) == history_keys
                and all(isinstance(v, list) and len(v) == epoch and all(type(x) in (int, float) and math.isfinite(x)
                                                                         for x in v) for v in history.values())):
            return "its history"
        saved = {k[len("model."):]: tuple(v.shape) for k, v in self.tensors.items() if k.startswith("model.")}
        if saved != shapes:
            return "its weights do not fit the network"
        for key, value in self.tensors.items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                return f"tensor {key!r} is not finite"
            kind, _, rest = key.partition(".")
            index, _, name = rest.partition(".")
            if kind == "optimizer" and not (index.isdecimal() and int(index) < n_parameters and name):
                return f"optimizer state {key!r}"
            if kind not in ("model", "optimizer"):
                return f"tensor {key!r}"
        return None

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def threads(self) -> int | None:
        """The CPU threads the checkpointed epochs ran on (None in a checkpoint from before it was recorded)."""
        return int(self.meta["threads"]) if "threads" in self.meta else None

    @property
    def seconds(self) -> float | None:
        """How long the checkpointed epochs took to train (None in a checkpoint from before it was recorded)."""
        return float(self.meta["seconds"]) if "seconds" in self.meta else None

    def restore(self, network, optimizer) -> tuple[int, dict]:
        """Put the saved state into ``network`` and ``optimizer``; return (epochs done, history). An optimiser
        state that does not fit the optimiser's parameters is a ValueError, raised before anything is put."""
        parameters = [p for group in optimizer.param_groups for p in group["params"]]  # as state_dict numbers them
        state: dict[int, dict] = {}
        for key, value in self.tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                fits = (value.numel() == 1 and value.item() >= 0 if name == "step"  # a step count
                        else int(index) < len(parameters) and value.shape == parameters[int(index)].shape)
                if not fits:
                    raise ValueError(f"optimizer state {key!r} does not fit the optimizer's parameters")
                state.setdefault(int(index), {})[name] = value
        load_state(network, {k[len("model."):]: v for k, v in self.tensors.items() if k.startswith("model.")})
        optimizer_state = optimizer.state_dict()
        optimizer_state["state"] = state
        optimizer.load_state_dict(optimizer_state)
        return int(self.meta["epoch"]), parse_json(self.meta["history"])


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
