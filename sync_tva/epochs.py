"""What both training loops share: the loop state and its epochs, the RNG state to resume from, the optimiser groups.

The graph model's ``fit`` (``train/loop.py``) and the text encoder's fine-tuning
(``features/finetune.py``) run the same bookkeeping: epochs after the last finished one, the best
epoch chosen on dev weighted F1 (:mod:`sync_tva.metrics`), a resume point holding the RNG state,
and AdamW with decoupled weight decay on matrices only. It sits in the foundation so that
``features`` may use it without importing ``train``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["NO_DECAY_NAMES", "TrainState", "parameter_groups", "restore_rng", "rng_state"]

# GAT attention vectors (DGL's GATConv and the fused layer): 3-d [1, heads, out] by shape, yet a
# scoring direction like a bias, not a weight matrix whose norm decay should shrink.
NO_DECAY_NAMES = frozenset({"attn_l", "attn_r"})
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


@dataclass
class TrainState:
    """Where a loop stands: epochs done, best dev weighted F1 and when, epochs without improvement, one history row per epoch."""

    epoch: int = 0
    best_metric: float = float("-inf")
    best_epoch: int = 0
    stale_epochs: int = 0
    history: list[dict] = field(default_factory=list)

    def epochs(self, total: int, patience: int | None = None) -> Iterator[int]:
        """The epochs after the last finished one up to ``total``; stops once ``patience`` epochs in a row brought no improvement."""
        for epoch in range(self.epoch + 1, total + 1):
            if patience is not None and self.stale_epochs >= patience:
                return
            yield epoch

    def record(self, epoch: int, metric: float, row: dict) -> bool:
        """Close ``epoch`` with its dev ``metric`` (higher is better) and history ``row``; whether it is the best so far."""
        improved = metric > self.best_metric
        self.epoch = epoch
        self.stale_epochs = 0 if improved else self.stale_epochs + 1
        if improved:
            self.best_metric, self.best_epoch = metric, epoch
        self.history.append(row)
        return improved


def rng_state() -> dict[str, Any]:
    """The torch RNG state a resume point holds: the CPU generator and this process's GPU (None where CUDA was never used)."""
    return {"rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}


def restore_rng(saved: dict[str, Any]) -> None:
    """Set the RNG state :func:`rng_state` gave (the GPU part only when both sides have CUDA)."""
    torch.set_rng_state(saved["rng"])
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved["cuda_rng"])


def _decays(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """Whether weight decay applies: matrices yes; biases, norm weights and attention vectors no."""
    return param.ndim >= 2 and not isinstance(module, _NORMS) and name not in NO_DECAY_NAMES


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups of ``model``'s trainable parameters: ``[decayed, not decayed]``, in parameter order.

    nanoGPT's rule (decay matrices, never biases or LayerNorm/BatchNorm weights), plus the GAT
    attention vectors; both training loops build their optimiser from it. A parameter shared by
    two modules is listed once.
    """
    groups: list[dict[str, Any]] = [{"params": [], "weight_decay": weight_decay}, {"params": [], "weight_decay": 0.0}]
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                groups[0 if _decays(module, name, param) else 1]["params"].append(param)
    return groups
