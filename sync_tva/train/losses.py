"""Losses for imbalanced emotion classes: cross-entropy, class-weighted cross-entropy, focal loss."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FocalLoss", "class_weights", "make_loss"]


class FocalLoss(nn.Module):
    r"""Focal loss (Lin et al., 2017): :math:`-(1 - p_t)^\gamma \log p_t`, averaged over the batch.

    Shapes: logits [B, C], target [B] -> scalar. ``gamma=0`` is plain cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)  # [B] log p_t
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss.mean()


def class_weights(labels: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (C * n_c)`` (a class never seen counts as seen once)."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=n_classes).clamp(min=1)
    return counts.sum() / (n_classes * counts.float())


def make_loss(name: str, train_labels: Sequence[int], n_classes: int, *, focal_gamma: float = 2.0) -> nn.Module:
    """The loss ``train.loss`` names: ``ce``, ``weighted_ce`` or ``focal``."""
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "weighted_ce":
        return nn.CrossEntropyLoss(weight=class_weights(train_labels, n_classes))
    if name == "focal":
        return FocalLoss(gamma=focal_gamma)
    raise ValueError(f"train.loss: unknown loss {name!r}; choose from ce, weighted_ce, focal")
