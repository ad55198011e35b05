"""Heterogeneous graph attention over the cross-modal relations (Sync-TVA, Sec. 3.3).

Each layer holds one ``dgl.nn.GATConv`` per canonical edge type of the schema; the
per-relation messages into a node type are summed, heads are concatenated, then a residual
connection, dropout and LayerNorm follow.

Why not ``dgl.nn.HeteroGraphConv``: in DGL 2.1 it cannot aggregate the ``(output, attention)``
pairs that ``get_attention=True`` returns, so the attention could only be kept as module
state. The loop below is the same computation (relations in the graph's order, summed), and
it returns each relation's attention as a value.
"""

from __future__ import annotations

from typing import Literal

import torch
from dgl import DGLHeteroGraph
from dgl.nn import GATConv
from torch import nn
from torch.nn import functional as F

from ..graphs.schema import CanonicalEType, GraphSchema
from .fused_gat import FusedHeteroGATLayer, RelationPlan, relation_key

__all__ = ["HeteroGATLayer", "HeteroGAT", "GATAttention", "CanonicalEType"]

GATAttention = dict[CanonicalEType, torch.Tensor]  # per canonical edge type: [E, heads, 1]


class HeteroGATLayer(nn.Module):
    r"""One layer of relation-wise GAT, built from the schema.

    .. math::
        h'_v = \mathrm{LN}\Big(h_v + \mathrm{Drop}\big(\mathrm{ELU}(\Vert_k \textstyle\sum_{r \in R(v)}
        \sum_{u \in N_r(v)} \alpha^{k}_{uv,r} W^{k}_r h_u)\big)\Big)

    Node types that receive no relation are carried through unchanged.

    Shapes: ``h[t]`` [N_t, hidden] for each node type -> same shapes; with
    ``return_attention`` also ``{etype: [E, heads, 1]}`` (sums to 1 over each destination's
    incoming edges of that relation, per head).
    """

    def __init__(self, schema: GraphSchema, hidden: int, *, num_heads: int = 4, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"hidden={hidden} must be divisible by num_heads={num_heads}")
        self.etypes: list[CanonicalEType] = list(schema.canonical_etypes)
        self.convs = nn.ModuleDict(
            {
                relation_key(etype): GATConv(
                    hidden, hidden // num_heads, num_heads, feat_drop=dropout, attn_drop=attn_dropout, allow_zero_in_degree=True
                )
                for etype in self.etypes
            }
        )
        self.norms = nn.ModuleDict({t: nn.LayerNorm(hidden) for t in schema.node_types})
        self.dropout = nn.Dropout(dropout)

    def conv(self, etype: CanonicalEType) -> GATConv:
        """The ``GATConv`` of one canonical edge type."""
        return self.convs[relation_key(etype)]

    def plan(self, g: DGLHeteroGraph) -> None:
        """Nothing to lay out: each relation runs on its own view of ``g`` (the fused layer's ``plan`` call, answered)."""
        return None

    def forward(
        self, g: DGLHeteroGraph, h: dict[str, torch.Tensor], *, return_attention: bool = False, plan: RelationPlan | None = None
    ) -> tuple[dict[str, torch.Tensor], GATAttention | None]:
        """``plan`` is unused (the fused layer's shared layout); both layers are called alike."""
        messages: dict[str, list[torch.Tensor]] = {}
        attention: GATAttention = {}
        own = set(self.etypes)
        for etype in g.canonical_etypes:  # the graph's order, as HeteroGraphConv sums them
            if etype not in own:
                continue  # e.g. the builder's placeholder relation of an edgeless schema
            src, _, dst = etype
            out, alpha = self.conv(etype)(g[etype], (h[src], h[dst]), get_attention=True)
            messages.setdefault(dst, []).append(out)  # [N_dst, heads, hidden/heads]
            if return_attention:
                attention[etype] = alpha.detach()
        result = {}
        for ntype, x in h.items():
            if ntype in messages:
                update = F.elu(torch.stack(messages[ntype]).sum(0).flatten(1))  # [N_t, hidden]: heads concatenated
                result[ntype] = self.norms[ntype](x + self.dropout(update))
            else:
                result[ntype] = x
        return result, (attention if return_attention else None)

    def reset_parameters(self) -> None:
        for conv in self.convs.values():
            conv.reset_parameters()
        for norm in self.norms.values():
            norm.reset_parameters()


class HeteroGAT(nn.Module):
    """A stack of GAT layers; ``num_layers=0`` is the identity.

    ``impl`` picks the layer: ``fused`` (:class:`~sync_tva.models.fused_gat.FusedHeteroGATLayer`,
    all relations in one pass) or ``per_relation`` (:class:`HeteroGATLayer`, the readable
    reference); both compute the same function and share parameter names.

    Shapes: ``h[t]`` [N_t, hidden] -> same shapes; with ``return_attention`` also one
    ``{etype: [E, heads, 1]}`` per layer.
    """

    def __init__(
        self,
        schema: GraphSchema,
        hidden: int,
        num_layers: int,
        *,
        num_heads: int = 4,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        impl: Literal["fused", "per_relation"] = "fused",
    ):
        super().__init__()
        layers = {"fused": FusedHeteroGATLayer, "per_relation": HeteroGATLayer}
        if impl not in layers:
            raise ValueError(f"unknown GAT implementation {impl!r}; choose from {sorted(layers)}")
        # A schema without edge types (one modality) has nothing to attend over.
        n = num_layers if schema.edges else 0
        self.layers = nn.ModuleList(
            layers[impl](schema, hidden, num_heads=num_heads, dropout=dropout, attn_dropout=attn_dropout) for _ in range(n)
        )

    def forward(
        self, g: DGLHeteroGraph, h: dict[str, torch.Tensor], *, return_attention: bool = False
    ) -> tuple[dict[str, torch.Tensor], list[GATAttention]]:
        per_layer: list[GATAttention] = []
        # The layers share one layout of the batch's relations, built once per forward (None for per_relation).
        plan = self.layers[0].plan(g) if len(self.layers) else None
        for layer in self.layers:
            h, attention = layer(g, h, return_attention=return_attention, plan=plan)
            if attention is not None:
                per_layer.append(attention)
        return h, per_layer
