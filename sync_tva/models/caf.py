"""CAF: cross-modal attention fusion (Sync-TVA, Sec. 3.5).

Each modality's pooled summary queries the nodes of the *other* modalities of the same
utterance (multi-head cross-attention); the attended summaries pass a residual LayerNorm
and are mixed by a softmax gate over modalities into one utterance vector. Modalities that
an utterance lacks are masked out of both the keys and the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .segments import Padded, pad_segments

__all__ = ["CAF", "CAFAttention"]


@dataclass
class CAFAttention:
    """What one CAF call attended to (detached).

    ``cross[m]``: [B, heads, L] weights of modality ``m``'s query over the key slots, laid out as
    the other modalities' padded nodes one after another (``key_layout[m]`` gives each block's
    modality and length); ``gates``: [B, M] modality weights in the order of ``modalities``.
    """

    modalities: list[str]
    cross: dict[str, torch.Tensor]
    key_layout: dict[str, list[tuple[str, int]]]
    gates: torch.Tensor


class CAF(nn.Module):
    r"""Cross-modal attention fusion of per-modality summaries.

    .. math::
        a_m = \mathrm{MHA}(q = s_m,\ k = v = \{h_u : u \in \text{other modalities}\}),\quad
        z_m = \mathrm{LN}(s_m + \mathrm{Drop}(a_m)),\quad
        f = \sum_m \mathrm{softmax}_m(w^\top z_m)\, z_m

    Shapes: ``summaries[m]`` [B, hidden]; ``nodes[m]`` [N_m, hidden]; ``counts[m]`` [B];
    output [B, hidden], and with ``return_attention`` a :class:`CAFAttention` (else None).
    """

    def __init__(self, modalities: list[str], hidden: int, *, num_heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.modalities = list(modalities)
        # With one modality there is nothing to attend to and nothing to weigh: no attention, no gate
        # (they would be parameters that never receive a gradient).
        multi = len(self.modalities) > 1
        self.attn = nn.ModuleDict(
            {m: nn.MultiheadAttention(hidden, num_heads, dropout=dropout, batch_first=True) for m in self.modalities} if multi else {}
        )
        self.norm = nn.ModuleDict({m: nn.LayerNorm(hidden) for m in self.modalities})
        # No bias: softmax over modalities ignores a shared shift, so a bias would never learn.
        self.gate = nn.Linear(hidden, 1, bias=False) if multi else None
        self.dropout = nn.Dropout(dropout)

    def _attend(self, m: str, summaries, padded: dict[str, Padded], keep: bool) -> tuple[torch.Tensor, torch.Tensor | None, list]:
        """Modality ``m``'s summary attending to the other modalities' (padded) nodes: [B, hidden]."""
        others = [o for o in self.modalities if o != m]
        query = summaries[m]
        if not others:
            return torch.zeros_like(query), None, []
        blocks = [padded[o] for o in others]
        keys = torch.cat([b.values for b in blocks], dim=1)  # [B, L_total, hidden]
        mask = torch.cat([b.mask for b in blocks], dim=1)  # [B, L_total]
        layout = [(o, b.values.shape[1]) for o, b in zip(others, blocks)]
        has_keys = mask.any(dim=1)  # an utterance may lack every other modality
        attended = torch.zeros_like(query)
        weights = None
        if has_keys.any():
            out, w = self.attn[m](
                query[has_keys].unsqueeze(1),  # [B', 1, hidden]
                keys[has_keys],
                keys[has_keys],
                key_padding_mask=~mask[has_keys],
                need_weights=keep,
                average_attn_weights=False,
            )
            attended = attended.index_put((has_keys.nonzero(as_tuple=True)[0],), out.squeeze(1))
            if keep:
                weights = query.new_zeros(query.shape[0], w.shape[1], keys.shape[1])
                weights[has_keys] = w.squeeze(2).detach()  # [B, heads, L_total]
        return attended, weights, layout

    def forward(
        self,
        summaries: dict[str, torch.Tensor],
        nodes: dict[str, torch.Tensor],
        counts: dict[str, torch.Tensor],
        *,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, CAFAttention | None]:
        fused_parts, cross, layouts = [], {}, {}
        # Each modality is padded once and serves as keys for every other modality.
        padded = {m: pad_segments(nodes[m], counts[m]) for m in self.modalities} if len(self.modalities) > 1 else {}
        for m in self.modalities:
            attended, weights, layout = self._attend(m, summaries, padded, return_attention)
            fused_parts.append(self.norm[m](summaries[m] + self.dropout(attended)))
            if weights is not None:
                cross[m], layouts[m] = weights, layout
        z = torch.stack(fused_parts, dim=1)  # [B, M, hidden]
        present = torch.stack([counts[m] > 0 for m in self.modalities], dim=1)  # [B, M]
        if self.gate is None:
            gates = present.to(z.dtype)  # one modality: weight 1 where it is present
        else:
            logits = self.gate(z).squeeze(-1).masked_fill(~present, float("-inf"))
            # An utterance with no node at all would give an all -inf row; it gets zero weights.
            gates = torch.nan_to_num(torch.softmax(logits, dim=1), nan=0.0)
        fused = (gates.unsqueeze(-1) * z).sum(dim=1)  # [B, hidden]
        return fused, (CAFAttention(self.modalities, cross, layouts, gates.detach()) if return_attention else None)

    def extra_repr(self) -> str:
        return f"modalities={self.modalities}"
