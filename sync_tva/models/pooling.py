"""Attention readout per node type (Sync-TVA, Sec. 3.4): one summary vector per utterance and modality."""

from __future__ import annotations

import dgl
import torch
from dgl import DGLHeteroGraph
from torch import nn

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
        with g.local_scope():
            g.nodes[ntype].data["h"] = h
            g.nodes[ntype].data["s"] = self.score(h)
            weights = dgl.softmax_nodes(g, "s", ntype=ntype)  # [N_t, 1], sums to 1 per utterance
            g.nodes[ntype].data["w"] = weights
            return dgl.sum_nodes(g, "h", weight="w", ntype=ntype), weights  # [B, hidden], [N_t, 1]
