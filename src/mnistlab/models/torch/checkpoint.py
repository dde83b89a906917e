"""Checkpoints of a PyTorch fit, and named arrays into a network.

A checkpoint is the state after a completed epoch in one safetensors file (no
pickle), written atomically, with a fingerprint of what the fit computes: a
later fit with the same fingerprint continues from it, any other starts afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from ..._io import atomic_write_bytes
from ...errors import one_line

CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "mnistlab-checkpoint-1"


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
    metadata (strings): format, fingerprint, epochs done, seed, CPU threads and history (JSON).
    The learning-rate schedule is a function of the step, so the epoch counter is its state.
    """

    def __init__(self, directory, fingerprint: str):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.fingerprint = fingerprint
        self.tensors: dict[str, torch.Tensor] = {}
        self.meta: dict[str, str] = {}
        self.unusable: str | None = None  # why ``load`` found nothing to resume, when a file was there

    def save(self, epoch: int, seed: int, threads: int, history: dict, network, optimizer) -> None:
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
        for index, state in optimizer.state_dict()["state"].items():
            tensors.update({f"optimizer.{index}.{k}": v.detach().cpu().contiguous()
                            for k, v in state.items() if torch.is_tensor(v)})
        meta = {"format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint, "epoch": str(epoch),
                "seed": str(seed), "threads": str(threads), "history": json.dumps(history)}
        atomic_write_bytes(self.path, safetensors_bytes(tensors, metadata=meta))

    def load(self) -> Checkpoint | None:
        """This checkpoint if one for the same fingerprint exists, else None (it will be overwritten);
        ``unusable`` then says why a file that is there cannot be resumed."""
        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != CHECKPOINT_FORMAT:
                    self.unusable = f"{self.path} is not an mnistlab checkpoint"
                    return None
                if meta.get("fingerprint") != self.fingerprint:
                    self.unusable = f"{self.path} was written for other parameters or data"
                    return None
                self.tensors = {key: f.get_tensor(key) for key in f.keys()}
        except (OSError, SafetensorError) as exc:
            self.unusable = f"{self.path} is unreadable ({one_line(exc)})"  # e.g. truncated
            return None
        self.meta = meta
        return self

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def threads(self) -> int | None:
        """The CPU threads the checkpointed epochs ran on (None in a checkpoint from before it was recorded)."""
        return int(self.meta["threads"]) if "threads" in self.meta else None

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
