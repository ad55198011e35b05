"""A dense reference for :class:`~sync_tva.models.sync_tva.SyncTVA`: padded tensors and masks, no message passing.

Why a second implementation: the DGL path (fused or per-relation GAT, segment padding,
readout) is checked against a computation that shares none of its machinery. Every block is
re-derived here from the model's parameters in plain PyTorch: each modality's nodes padded to
``[B, L, D]`` with a mask, each relation an adjacency mask ``[B, L_dst, L_src]`` written from
the graph's edge lists, every attention a masked softmax. Evaluation mode only (no dropout).
It also serves the speed benchmark as the dense alternative for inference.
"""

from __future__ import annotations

import math

import torch
from dgl import DGLHeteroGraph
from torch import nn
from torch.nn import functional as F

from .msde import MSDE
from .sync_tva import SyncTVA

__all__ = ["dense_logits", "DenseBatch"]


class DenseBatch:
    """Node positions of a batched heterograph: utterance and slot of every node, per type.

    Shapes: ``graph[t]``, ``slot[t]`` [N_t]; ``mask[t]`` [B, L_t] (True on real nodes).
    """

    def __init__(self, g: DGLHeteroGraph, ntypes: list[str]):
        self.batch_size = g.batch_size
        self.graph, self.slot, self.mask = {}, {}, {}
        for t in ntypes:
            counts = g.batch_num_nodes(t)
            graph = torch.repeat_interleave(torch.arange(self.batch_size, device=counts.device), counts)
            first = torch.cumsum(counts, 0) - counts
            self.graph[t] = graph
            self.slot[t] = torch.arange(graph.numel(), device=counts.device) - first[graph]
            length = max(int(counts.max()) if counts.numel() else 0, 1)
            self.mask[t] = torch.arange(length, device=counts.device)[None, :] < counts[:, None]

    def pad(self, t: str, x: torch.Tensor) -> torch.Tensor:
        """``[N_t, ...]`` -> ``[B, L_t, ...]`` with zeros in the padding."""
        out = x.new_zeros(self.batch_size, self.mask[t].shape[1], *x.shape[1:])
        out[self.graph[t], self.slot[t]] = x
        return out

    def adjacency(self, g: DGLHeteroGraph, etype: tuple[str, str, str]) -> torch.Tensor:
        """``[B, L_dst, L_src]`` True where an edge of ``etype`` joins the two slots."""
        src, _, dst = etype
        u, v = g.edges(etype=etype)
        adj = torch.zeros(self.batch_size, self.mask[dst].shape[1], self.mask[src].shape[1], dtype=torch.bool, device=u.device)
        adj[self.graph[dst][v], self.slot[dst][v], self.slot[src][u]] = True
        return adj


def _masked_softmax(scores: torch.Tensor, keep: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` where ``keep``; all-masked rows give zeros instead of NaN."""
    return torch.nan_to_num(torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=dim), nan=0.0)


def _attention(module: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """Multi-head attention from the module's weights: query [B, Lq, D], keys [B, Lk, D], key_mask [B, Lk]."""
    b, lq, d = query.shape
    heads = module.num_heads
    wq, wk, wv = module.in_proj_weight.chunk(3)
    bq, bk, bv = module.in_proj_bias.chunk(3)
    split = lambda x: x.view(b, x.shape[1], heads, d // heads).transpose(1, 2)  # noqa: E731  [B, heads, L, d/heads]
    q, k, v = split(query @ wq.T + bq), split(keys @ wk.T + bk), split(keys @ wv.T + bv)
    weights = _masked_softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), key_mask[:, None, None, :], dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(b, lq, d)  # heads concatenated
    return module.out_proj(out)


def _enhance(block: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSDE (or the plain projection) on padded nodes [B, L, in] -> [B, L, hidden]."""
    if not isinstance(block, MSDE):
        return block.proj(x)
    h = block.proj(x)
    m = mask.unsqueeze(-1).to(h.dtype)
    utterance_mean = (h * m).sum(1) / m.sum(1).clamp(min=1)  # [B, hidden]: mean over the utterance's nodes
    h = h * torch.sigmoid(block.gate(torch.cat([h, utterance_mean[:, None, :].expand_as(h)], dim=-1)))
    return block.norm(h + _attention(block.attn, h, h, mask))


def _gat_layer(layer: nn.Module, g: DGLHeteroGraph, dense: DenseBatch, h: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One GAT layer on padded nodes, from either implementation's (shared-name) parameters."""
    received: dict[str, torch.Tensor] = {}
    for etype in g.canonical_etypes:
        if etype not in layer.etypes:
            continue
        src, _, dst = etype
        p = layer.convs["|".join(etype)]
        heads, out = p.attn_l.shape[1], p.attn_l.shape[2]
        fs = (h[src] @ p.fc.weight.T).unflatten(-1, (heads, out))  # [B, Ls, heads, out]
        fd = (h[dst] @ p.fc.weight.T).unflatten(-1, (heads, out))
        el, er = (fs * p.attn_l).sum(-1), (fd * p.attn_r).sum(-1)  # [B, Ls, heads], [B, Ld, heads]
        scores = F.leaky_relu(er[:, :, None, :] + el[:, None, :, :], 0.2)  # [B, Ld, Ls, heads]
        alpha = _masked_softmax(scores, dense.adjacency(g, etype)[..., None], dim=2)
        msg = torch.einsum("bdsh,bshf->bdhf", alpha, fs).flatten(2) + p.bias  # [B, Ld, hidden]
        received[dst] = received[dst] + msg if dst in received else msg
    return {t: layer.norms[t](x + F.elu(received[t])) if t in received else x for t, x in h.items()}


def _fuse(caf: nn.Module, summaries: dict[str, torch.Tensor], h: dict[str, torch.Tensor], dense: DenseBatch) -> torch.Tensor:
    """CAF: each summary attends to the other modalities' padded nodes, then the masked softmax gate."""
    mods = caf.modalities
    z = []
    for m in mods:
        others = [o for o in mods if o != m]
        attended = torch.zeros_like(summaries[m])
        if others:
            keys = torch.cat([h[o] for o in others], dim=1)
            mask = torch.cat([dense.mask[o] for o in others], dim=1)
            attended = _attention(caf.attn[m], summaries[m][:, None, :], keys, mask)[:, 0]
            attended = attended * mask.any(1, keepdim=True)  # an utterance without other modalities attends to nothing
        z.append(caf.norm[m](summaries[m] + attended))
    z = torch.stack(z, dim=1)  # [B, M, hidden]
    present = torch.stack([dense.mask[m].any(1) for m in mods], dim=1)  # [B, M]
    gates = present.to(z.dtype) if caf.gate is None else _masked_softmax(caf.gate(z).squeeze(-1), present, dim=1)
    return (gates.unsqueeze(-1) * z).sum(1)


@torch.no_grad()
def dense_logits(model: SyncTVA, g: DGLHeteroGraph) -> torch.Tensor:
    """Logits [B, n_classes] of ``model`` (in eval mode) on the batched graph ``g``, computed densely."""
    if model.training:
        raise ValueError("dense_logits is an evaluation reference: call model.eval() first (it has no dropout)")
    mods = model.modalities
    dense = DenseBatch(g, mods)
    h = {}
    for m in mods:
        x = dense.pad(m, model.normalizer(m, g.nodes[m].data["feat"]))
        h[m] = _enhance(model.enhance[m], x, dense.mask[m]) * dense.mask[m].unsqueeze(-1)  # padding stays zero
    for layer in model.gat.layers:
        h = {m: x * dense.mask[m].unsqueeze(-1) for m, x in _gat_layer(layer, g, dense, h).items()}
    summaries = {}
    for m in mods:
        score = model.pool[m].score(h[m]).squeeze(-1)  # [B, L]
        summaries[m] = (_masked_softmax(score, dense.mask[m], dim=1).unsqueeze(-1) * h[m]).sum(1)  # [B, hidden]
    if model.caf is not None:
        fused = _fuse(model.caf, summaries, h, dense)
    else:
        fused = torch.cat([summaries[m] for m in mods], dim=-1)
    return model.classifier(fused)
