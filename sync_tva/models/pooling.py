"""Attention readout per node type (Sync-TVA, Sec. 3.4): one summary vector per utterance and modality."""

from __future__ import annotations

import torch
from dgl import DGLHeteroGraph
from torch import nn

from .segments import segment_softmax, segment_sum

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    r"""Softmax-weighted sum of one node type's nodes in each utterance.

    .. math:: s = \sum_{v} \mathrm{softmax}_v(w^\top \tanh(W h_v))\, h_v

    An utterance with no node of this type gets a zero summary (the fusion masks it out).

    Shapes: ``h`` [N_t, hidden] -> ([B, hidden], readout weights [N_t, 1]); the weights sum to
    1 over each utterance's nodes.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))

    def forward(self, g: DGLHeteroGraph, h: torch.Tensor, ntype: str) -> tuple[torch.Tensor, torch.Tensor]:
        # Segment ops on the batch's node counts: the same readout as dgl.softmax_nodes and
        # dgl.sum_nodes without their frame bookkeeping, which cost more than the arithmetic.
        counts = g.batch_num_nodes(ntype)
        weights = segment_softmax(self.score(h), counts)  # [N_t, 1], sums to 1 per utterance
        return segment_sum(weights * h, counts), weights  # [B, hidden], [N_t, 1]
