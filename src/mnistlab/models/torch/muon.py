"""Muon for a network's convolution filters and SGD for the rest, as one optimiser (or SGD alone).

Muon (Keller Jordan, 2024; the optimiser of airbench94_muon's CIFAR-10 record)
moves each convolution's filters along their Nesterov momentum made
orthogonal: the momentum G = U S Vᵀ (one row per output channel) becomes about
U Vᵀ, so that every direction the filters could move in moves by as much. Five
Newton–Schulz iterations of a quintic make it, at the cost of a few small
matrix products a step. Each filter bank is rescaled to a fixed norm (√ of
its output channels) before each step: the batch norm after every
convolution makes the network blind to that norm, and fixing it keeps the
learning rate's meaning (instead of weight decay). Everything else — batch
norms, the linear head — steps by SGD with Nesterov momentum and weight decay,
as ``torch.optim.SGD`` does.

``torch.optim.Muon`` takes 2-D weights only and iterates in bfloat16, which a
CPU without AVX-512 BF16 emulates slowly; here a filter bank (out × in × 3 × 3)
is a matrix of out rows, the iterations run in float32 (the weights' own
type), and on its out × out Gram matrix rather than on the filters themselves
(the same polynomial in fewer multiplications: out ≤ in · 9 for every
convolution of the fast CNN).
"""

from __future__ import annotations

import torch
from torch import nn

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)  # the quintic's coefficients (Jordan): steep at 0, so 5 steps do
NEWTON_SCHULZ_STEPS = 5


def orthogonalized(gradient: torch.Tensor) -> torch.Tensor:
    """About U Vᵀ for ``gradient`` (its first dimension the rows, the rest flattened) = U S Vᵀ, with
    singular values spread over ~0.7–1.2 rather than exactly 1 (Muon needs no more), in its shape.

    Each step is X ← a X + (b A + c A²) X with A = X Xᵀ, i.e. X ← p(A) X. Every p(A) is a polynomial
    in the first Gram matrix, so the steps are tracked on the m × m matrices alone (A ← p A p, M ← p M)
    and X = M X₀ formed once at the end: the same numbers in float32 (to ~1e-6), in 2 products of
    X's size instead of 10.
    """
    x = gradient.reshape(len(gradient), -1)
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)  # Frobenius ≥ spectral norm: every singular value ≤ 1, where the quintic converges
    a, b, c = NEWTON_SCHULZ
    gram = x @ x.T
    identity = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    total = None
    for step in range(NEWTON_SCHULZ_STEPS):
        p = torch.addmm(a * identity + b * gram, gram, gram, alpha=c)
        total = p if total is None else p @ total
        if step < NEWTON_SCHULZ_STEPS - 1:  # the last step's Gram matrix is not read
            gram = p @ gram @ p
    x = total @ x
    return (x.T if tall else x).reshape(gradient.shape)


class NesterovSGD:
    """SGD with Nesterov momentum and weight decay, ``torch.optim.SGD(nesterov=True)``'s arithmetic, in
    which a group marked ``orthogonal`` moves by Muon instead. ``sgd`` makes one group of all of a
    network's parameters, as ``torch.optim.SGD(network.parameters())`` does; ``filter_muon`` a Muon
    group of the 4-D weights (convolution filters) and an SGD group of the other trained parameters.

    A group steps by ``lr × lr_scale``: ``lr`` is what a schedule sets (``group["lr"]`` of every
    group), and ``filter_muon`` scales the filters' group so that it follows the same schedule to a
    peak of ``filter_lr``.

    Not a ``torch.optim.Optimizer``: those wrap their methods to keep PyTorch's compiler out, and
    the first call of such a wrapper in a process imports the compiler (``torch._dynamo``: 0.9 s,
    and ~2 ms more in every training step after it: ~2.3 s of the fast preset's ~42 s on a Xeon held
    to AVX2, docs/design/cnn.md).
    This has what the training loop and checkpoints use of one: ``param_groups``,
    ``zero_grad``, ``step``, and ``state_dict``/``load_state_dict`` in the same layout (each
    parameter's state under its index in the groups), so a checkpoint written with
    ``torch.optim.SGD`` resumes in ``sgd``'s.
    """

    def __init__(self, param_groups: list[dict]):
        """Groups of ``params``, ``momentum``, ``weight_decay``, ``lr_scale`` and ``orthogonal``; empty ones dropped."""
        self.param_groups = [dict(group, lr=0.0) for group in param_groups if group["params"]]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @classmethod
    def sgd(cls, network: nn.Module, momentum: float, weight_decay: float) -> NesterovSGD:
        """One SGD group of every parameter, frozen ones too (they keep their index and, having no
        gradient, do not move), as ``torch.optim.SGD(network.parameters(), nesterov=True)``."""
        return cls([dict(params=list(network.parameters()), orthogonal=False, momentum=momentum, lr_scale=1.0,
                         weight_decay=weight_decay)])

    @classmethod
    def filter_muon(cls, network: nn.Module, peak_lr: float, filter_lr: float, momentum: float,
                    filter_momentum: float, weight_decay: float) -> NesterovSGD:
        """Muon for the trained 4-D weights (no weight decay: their norm is fixed), SGD for the other
        trained parameters; frozen parameters are left out."""
        trained = [p for p in network.parameters() if p.requires_grad]
        return cls([dict(params=[p for p in trained if p.ndim == 4], orthogonal=True, momentum=filter_momentum,
                         lr_scale=filter_lr / peak_lr, weight_decay=0.0),
                    dict(params=[p for p in trained if p.ndim != 4], orthogonal=False, momentum=momentum,
                         lr_scale=1.0, weight_decay=weight_decay)])

    def _parameters(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self) -> None:
        """Drop the gradients (as ``torch.optim``'s default, ``set_to_none=True``)."""
        for p in self._parameters():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            lr, momentum = group["lr"] * group["lr_scale"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                gradient = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state.setdefault(p, {})
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = gradient.clone()  # as SGD's first step
                else:
                    state["momentum_buffer"].mul_(momentum).add_(gradient)
                direction = gradient.add(state["momentum_buffer"], alpha=momentum)  # Nesterov
                if group["orthogonal"]:
                    p.mul_(len(p) ** 0.5 / p.norm().clamp(min=1e-12))
                    direction = orthogonalized(direction)
                p.add_(direction, alpha=-lr)

    def state_dict(self) -> dict:
        """``{"state": {index: {"momentum_buffer": tensor}}, "param_groups": [...]}``, as ``torch.optim``'s."""
        index = {p: i for i, p in enumerate(self._parameters())}
        groups = [{**{k: v for k, v in group.items() if k != "params"}, "params": [index[p] for p in group["params"]]}
                  for group in self.param_groups]
        return {"state": {index[p]: dict(state) for p, state in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        sizes = [len(group["params"]) for group in state_dict["param_groups"]]
        if sizes != [len(group["params"]) for group in self.param_groups]:
            raise ValueError(f"optimiser state for parameter groups of {sizes} parameters, not of "
                             f"{[len(group['params']) for group in self.param_groups]}")
        for group, saved in zip(self.param_groups, state_dict["param_groups"]):
            group.update({k: v for k, v in saved.items() if k != "params"})
        parameters = self._parameters()
        self.state = {parameters[int(i)]: {k: v.to(parameters[int(i)]) for k, v in state.items()}
                      for i, state in state_dict["state"].items()}
