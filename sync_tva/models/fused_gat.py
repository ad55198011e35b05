"""Heterogeneous graph attention with every relation of a layer in one pass (Sync-TVA, Sec. 3.3).

The same mathematics as :class:`~sync_tva.models.hetero_gat.HeteroGATLayer` (one GAT per
canonical edge type, messages into a node type summed, ELU, residual, dropout, LayerNorm), but
computed with a fixed number of kernels per layer whatever the number of relations, as DGL's
relational layers (``TypedLinear``, ``RelGraphConv``, ``HGTConv``) do.

Why: the per-relation loop pays the per-call cost of DGL and PyTorch (graph views, frames,
about twenty small kernels) once per relation and layer, forward and backward. Here the
batch's relations are laid out once (:class:`RelationPlan`) as one bipartite graph from
*relation-source rows* (each source node once per relation it sends on) to
*relation-destination rows* (each destination node once per relation it receives on). A
softmax over a destination row's incoming edges is then exactly the per-relation softmax, and
one ``segment_mm``, one ``edge_softmax`` and one weighted sum (DGL's ``u_mul_e_sum``) serve all
relations. The sparse kernels' own arithmetic is the same in both layers, so the gain is largest
on small graphs (see ``benchmarks/speed.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import dgl
import torch
from dgl import DGLHeteroGraph
from torch import nn
from torch.nn import functional as F

from ..graphs.schema import CanonicalEType, GraphSchema

__all__ = ["FusedHeteroGATLayer", "RelationPlan", "plan_relations", "relation_key"]


def relation_key(etype: CanonicalEType) -> str:
    """The ``ModuleDict`` key of a canonical edge type (keys may not contain dots); both GAT layers use it,
    so their state dicts are interchangeable."""
    return "|".join(etype)


@dataclass
class RelationPlan:
    """A batched heterograph's relations laid out for :class:`FusedHeteroGATLayer`.

    Node rows: every node type's nodes back to back, in ``ntypes`` order (``counts`` each).
    ``graph`` is bipartite: source row ``i`` is node ``src_rows[i]`` acting for one relation,
    destination row ``j`` is node ``dst_rows[j]`` receiving for one relation (``dst_relation[j]``);
    both are grouped by relation (``src_seglen``/``dst_seglen`` [R], on the CPU as
    ``segment_mm`` needs), and its edges are each relation's edges in edge-id order,
    relation after relation (``edge_counts``).
    """

    etypes: list[CanonicalEType]
    ntypes: list[str]
    counts: list[int]
    receivers: set[str]
    graph: DGLHeteroGraph
    src_rows: torch.Tensor
    src_seglen: torch.Tensor
    dst_rows: torch.Tensor
    dst_seglen: torch.Tensor
    dst_relation: torch.Tensor
    edge_counts: list[int]


def _cat(parts: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Concatenated index tensors; an empty int64 tensor when there are none."""
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=device)


def plan_relations(g: DGLHeteroGraph, etypes: list[CanonicalEType], ntypes: list[str]) -> RelationPlan:
    """Lay out the relations of ``g`` that are in ``etypes`` (in the graph's order), once per batch.

    The loop runs over relations (a handful), never over utterances; every layer of a stack
    reuses the result.
    """
    own = set(etypes)
    rels = [et for et in g.canonical_etypes if et in own]  # the graph's order, as the per-relation layer
    counts = [g.num_nodes(t) for t in ntypes]
    start = dict(zip(ntypes, accumulate([0, *counts])))
    device = g.device
    src_rows, dst_rows, src_len, dst_len, e_src, e_dst, edge_counts = [], [], [], [], [], [], []
    n_src = n_dst = 0
    for etype in rels:
        src, _, dst = etype
        u, v = g.edges(etype=etype, order="eid")
        ns, nd = g.num_nodes(src), g.num_nodes(dst)
        src_rows.append(torch.arange(start[src], start[src] + ns, device=device))
        dst_rows.append(torch.arange(start[dst], start[dst] + nd, device=device))
        e_src.append(u.long() + n_src)
        e_dst.append(v.long() + n_dst)
        src_len.append(ns)
        dst_len.append(nd)
        edge_counts.append(int(u.shape[0]))
        n_src, n_dst = n_src + ns, n_dst + nd
    e_src, e_dst = _cat(e_src, device), _cat(e_dst, device)
    graph = dgl.create_block((e_src, e_dst), num_src_nodes=n_src, num_dst_nodes=n_dst, device=device)
    dst_seglen = torch.tensor(dst_len, dtype=torch.int64)
    return RelationPlan(
        etypes=rels,
        ntypes=list(ntypes),
        counts=counts,
        receivers={dst for _, _, dst in rels},
        graph=graph,
        src_rows=_cat(src_rows, device),
        src_seglen=torch.tensor(src_len, dtype=torch.int64),
        dst_rows=_cat(dst_rows, device),
        dst_seglen=dst_seglen,
        dst_relation=torch.repeat_interleave(torch.arange(len(rels), device=device), dst_seglen.to(device)),
        edge_counts=edge_counts,
    )


class _RelationParameters(nn.Module):
    """One relation's GAT parameters under ``GATConv``'s names, created and initialised in its order."""

    def __init__(self, hidden: int, num_heads: int):
        super().__init__()
        out = hidden // num_heads
        self.fc = nn.Linear(hidden, hidden, bias=False)
        self.attn_l = nn.Parameter(torch.empty(1, num_heads, out))
        self.attn_r = nn.Parameter(torch.empty(1, num_heads, out))
        self.bias = nn.Parameter(torch.empty(hidden))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``GATConv``'s initialisation: xavier normal with the ReLU gain, zero bias."""
        gain = nn.init.calculate_gain("relu")
        nn.init.xavier_normal_(self.fc.weight, gain=gain)
        nn.init.xavier_normal_(self.attn_l, gain=gain)
        nn.init.xavier_normal_(self.attn_r, gain=gain)
        nn.init.zeros_(self.bias)


class FusedHeteroGATLayer(nn.Module):
    r"""One layer of relation-wise GAT with all relations fused, built from the schema.

    .. math::
        h'_v = \mathrm{LN}\Big(h_v + \mathrm{Drop}\big(\mathrm{ELU}(\Vert_k \textstyle\sum_{r \in R(v)}
        \big(b^k_r + \sum_{u \in N_r(v)} \alpha^{k}_{uv,r} W^{k}_r h_u\big))\big)\Big),\quad
        \alpha^k_{uv,r} = \mathrm{softmax}_{u \in N_r(v)}\,\mathrm{LeakyReLU}_{0.2}
        \big(a^{k\top}_{l,r} W^k_r h_u + a^{k\top}_{r,r} W^k_r h_v\big)

    Parameters carry ``HeteroGATLayer``'s names (``convs.<src|rel|dst>.fc.weight``, ``attn_l``,
    ``attn_r``, ``bias``; ``norms.<type>``) and are initialised like ``GATConv``, so either
    layer loads the other's state dict. Feature dropout is drawn independently for every
    relation a node takes part in, as in one ``GATConv`` per relation.

    Shapes: ``h[t]`` [N_t, hidden] for each node type -> same shapes; with
    ``return_attention`` also ``{etype: [E, heads, 1]}`` in each relation's edge-id order.

    Example::

        layer = FusedHeteroGATLayer(load_schema("utterance"), 64, num_heads=4)
        h, attention = layer(g, {t: torch.randn(g.num_nodes(t), 64) for t in g.ntypes}, return_attention=True)
    """

    def __init__(self, schema: GraphSchema, hidden: int, *, num_heads: int = 4, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        if hidden % num_heads:
            raise ValueError(f"hidden={hidden} must be divisible by num_heads={num_heads}")
        self.hidden, self.num_heads = hidden, num_heads
        self.etypes: list[CanonicalEType] = list(schema.canonical_etypes)
        self.node_types: list[str] = list(schema.node_types)
        self.convs = nn.ModuleDict({relation_key(et): _RelationParameters(hidden, num_heads) for et in self.etypes})
        self.norms = nn.ModuleDict({t: nn.LayerNorm(hidden) for t in schema.node_types})
        self.feat_drop = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.dropout = nn.Dropout(dropout)

    def plan(self, g: DGLHeteroGraph) -> RelationPlan:
        """This layer's relations of ``g`` laid out for :meth:`forward` (share it across a stack)."""
        return plan_relations(g, self.etypes, self.node_types)

    def _stacked(self, etypes: list[CanonicalEType]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per relation: source projection with the left attention folded in, right attention, bias.

        ``a_l^k . (W^k x) = ((W^k)^T a_l^k) . x``, so the source attention score is ``H`` extra
        output columns of the same matmul, and the destination score needs no projection of
        the destination features at all. Shapes: [R, D, D + H], [R, D, H], [R, D].
        """
        params = [self.convs[relation_key(et)] for et in etypes]
        r, d, h = len(params), self.hidden, self.num_heads
        weight = torch.stack([p.fc.weight for p in params])  # [R, D_out, D_in]
        per_head = weight.view(r, h, d // h, d)  # [R, H, F, D_in]: output row k*F+f is head k, feature f
        attn_l = torch.cat([p.attn_l for p in params])  # [R, H, F]
        attn_r = torch.cat([p.attn_r for p in params])
        src_weight = torch.cat([weight.transpose(1, 2), torch.einsum("rhfi,rhf->rih", per_head, attn_l)], dim=2)
        dst_weight = torch.einsum("rhfi,rhf->rih", per_head, attn_r)
        return src_weight, dst_weight, torch.stack([p.bias for p in params])

    def forward(
        self,
        g: DGLHeteroGraph,
        h: dict[str, torch.Tensor],
        *,
        return_attention: bool = False,
        plan: RelationPlan | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[CanonicalEType, torch.Tensor] | None]:
        plan = plan if plan is not None else self.plan(g)
        if not plan.etypes:  # e.g. only the builder's placeholder relation: nothing is received
            return dict(h), ({} if return_attention else None)
        d, heads = self.hidden, self.num_heads
        src_weight, dst_weight, bias = self._stacked(plan.etypes)
        x = torch.cat([h[t] for t in plan.ntypes])  # [N, D]: node types back to back
        # One dropout draw per (relation, node), as each GATConv drops its own inputs.
        xs = self.feat_drop(x.index_select(0, plan.src_rows))  # [S, D]; index_select: its backward is one index_add
        xd = self.feat_drop(x.index_select(0, plan.dst_rows))  # [G, D]
        projected = dgl.ops.segment_mm(xs, src_weight, plan.src_seglen)  # [S, D + H]
        ft = projected[:, :d].reshape(-1, heads, d // heads)  # [S, H, F]
        el = projected[:, d:]  # [S, H]
        er = dgl.ops.segment_mm(xd, dst_weight, plan.dst_seglen)  # [G, H]
        scores = F.leaky_relu(dgl.ops.u_add_v(plan.graph, el, er), 0.2)  # [E, H]
        alpha = self.attn_drop(dgl.ops.edge_softmax(plan.graph, scores))  # per (relation, destination)
        received = dgl.ops.u_mul_e_sum(plan.graph, ft, alpha.unsqueeze(-1))  # [G, H, F]: alpha-weighted sum of the sources
        received = received.reshape(-1, d) + bias.index_select(0, plan.dst_relation)  # [G, D]: heads concatenated, each relation's bias
        summed = x.new_zeros(x.shape).index_add_(0, plan.dst_rows, received)  # [N, D]: relations into a node summed
        update = self.dropout(F.elu(summed)).split(plan.counts)
        result = dict(h)
        for t, u in zip(plan.ntypes, update):
            if t in plan.receivers:
                result[t] = self.norms[t](h[t] + u)
        if not return_attention:
            return result, None
        per_relation = alpha.detach().unsqueeze(-1).split(plan.edge_counts)  # each [E_r, H, 1]
        return result, dict(zip(plan.etypes, per_relation))

    def reset_parameters(self) -> None:
        for params in self.convs.values():
            params.reset_parameters()
        for norm in self.norms.values():
            norm.reset_parameters()

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, num_heads={self.num_heads}, relations={len(self.etypes)}"
