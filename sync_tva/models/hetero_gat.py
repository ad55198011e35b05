"""Heterogeneous graph attention over the cross-modal relations (Sync-TVA, Sec. 3.3).

Each layer is a ``dgl.nn.HeteroGraphConv`` holding one ``GATConv`` per canonical edge type;
the per-relation messages into a node type are summed, heads are concatenated, then a
residual connection, dropout and LayerNorm follow.

Why a ``GATConv`` subclass: DGL 2.1's ``HeteroGraphConv`` cannot aggregate the
``(output, attention)`` pairs that ``get_attention=True`` returns, so each relation's module
keeps its last attention itself and returns only the output.
"""

from __future__ import annotations

import torch
from dgl import DGLHeteroGraph
from dgl.nn import GATConv, HeteroGraphConv
from torch import nn
from torch.nn import functional as F

from ..graphs.schema import GraphSchema

__all__ = ["AttentiveGATConv", "HeteroGATLayer", "HeteroGAT"]

CanonicalEType = tuple[str, str, str]


class AttentiveGATConv(GATConv):
    """``GATConv`` that stores the attention of its last call in ``last_attention`` [E, heads, 1]."""

    def forward(self, graph, feat, edge_weight=None, get_attention=False):  # noqa: D102 (same as GATConv)
        out, attention = super().forward(graph, feat, edge_weight=edge_weight, get_attention=True)
        self.last_attention = attention
        return (out, attention) if get_attention else out


class HeteroGATLayer(nn.Module):
    r"""One layer of relation-wise GAT, built from the schema.

    .. math::
        h'_v = \mathrm{LN}\Big(h_v + \mathrm{Drop}\big(\mathrm{ELU}(\Vert_k \textstyle\sum_{r \in R(v)}
        \sum_{u \in N_r(v)} \alpha^{k}_{uv,r} W^{k}_r h_u)\big)\Big)

    Node types that receive no relation are carried through unchanged (``HeteroGraphConv``
    would drop them from its output).

    Shapes: ``h[t]`` [N_t, hidden] for each node type -> same shapes.
    """

    def __init__(self, schema: GraphSchema, hidden: int, *, num_heads: int = 4, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"hidden={hidden} must be divisible by num_heads={num_heads}")
        self.etypes: list[CanonicalEType] = schema.canonical_etypes
        self.conv = HeteroGraphConv(
            {
                etype: AttentiveGATConv(
                    hidden, hidden // num_heads, num_heads, feat_drop=dropout, attn_drop=attn_dropout, allow_zero_in_degree=True
                )
                for etype in self.etypes
            },
            aggregate="sum",
        )
        self.norms = nn.ModuleDict({t: nn.LayerNorm(hidden) for t in schema.node_types})
        self.dropout = nn.Dropout(dropout)

    def forward(self, g: DGLHeteroGraph, h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        messages = self.conv(g, h)  # {dst type: [N_t, heads, hidden/heads]}
        out = {}
        for ntype, x in h.items():
            if ntype in messages:
                update = F.elu(messages[ntype].flatten(1))  # [N_t, hidden]: heads concatenated
                out[ntype] = self.norms[ntype](x + self.dropout(update))
            else:
                out[ntype] = x
        return out

    def attention(self) -> dict[CanonicalEType, torch.Tensor]:
        """Attention of the last forward pass per canonical edge type, each [E, heads, 1]."""
        return {etype: self.conv.mod_dict[etype].last_attention for etype in self.etypes}


class HeteroGAT(nn.Module):
    """A stack of :class:`HeteroGATLayer`; ``num_layers=0`` is the identity.

    Shapes: ``h[t]`` [N_t, hidden] -> same shapes.
    """

    def __init__(self, schema: GraphSchema, hidden: int, num_layers: int, *, num_heads: int = 4, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        # A schema without edge types (one modality) has nothing to attend over.
        n = num_layers if schema.edges else 0
        self.layers = nn.ModuleList(
            HeteroGATLayer(schema, hidden, num_heads=num_heads, dropout=dropout, attn_dropout=attn_dropout) for _ in range(n)
        )

    def forward(self, g: DGLHeteroGraph, h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for layer in self.layers:
            h = layer(g, h)
        return h

    def attention(self) -> list[dict[CanonicalEType, torch.Tensor]]:
        """Per layer, the attention per canonical edge type of the last forward pass."""
        return [layer.attention() for layer in self.layers]
