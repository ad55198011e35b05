"""MSDE: modality-specific dynamic enhancement (Sync-TVA, Sec. 3.2).

Per modality: project node features to the model width, scale each feature by a dynamic
gate computed from the node and the mean of its utterance's nodes of that modality, then let the nodes of
one utterance attend to each other (multi-head self-attention), with residual, dropout and
LayerNorm.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .segments import pad_segments, segment_ids, segment_mean

__all__ = ["MSDE", "MSDEAttention", "Projection"]


@dataclass
class MSDEAttention:
    """What one MSDE call attended to (detached).

    ``attention``: [B', heads, L, L] self-attention over the B' utterances that have nodes of
    this modality (None when none has); ``gate``: [N, hidden] the dynamic gate of every node.
    """

    attention: torch.Tensor | None
    gate: torch.Tensor


class MSDE(nn.Module):
    r"""Dynamic gating plus self-attention over one modality's nodes of each utterance.

    .. math::
        h = W_p x,\quad c = \mathrm{mean}_{utt}(h),\quad g = \sigma(W_g [h; c]),\quad
        \tilde h = h \odot g,\quad out = \mathrm{LN}(\tilde h + \mathrm{Drop}(\mathrm{MHA}(\tilde h)))

    Shapes:
        x: [N, in_dim] nodes of all utterances of the batch, utterance after utterance;
        counts: [B] nodes per utterance (zeros allowed); output: [N, hidden], and with
        ``return_attention`` an :class:`MSDEAttention` (else None).

    Example::

        msde = MSDE(768, 64, num_heads=4)
        out, _ = msde(torch.randn(10, 768), torch.tensor([6, 0, 4]))   # [10, 64]
    """

    def __init__(self, in_dim: int, hidden: int, *, num_heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.in_dim, self.hidden, self.num_heads = in_dim, hidden, num_heads
        self.proj = nn.Linear(in_dim, hidden)
        self.gate = nn.Linear(2 * hidden, hidden)
        self.attn = nn.MultiheadAttention(hidden, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier projections; gate bias at +1 so the gate starts mostly open."""
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.xavier_uniform_(self.gate.weight)
        nn.init.constant_(self.gate.bias, 1.0)
        self.attn._reset_parameters()
        self.norm.reset_parameters()

    def forward(
        self, x: torch.Tensor, counts: torch.Tensor, *, return_attention: bool = False
    ) -> tuple[torch.Tensor, MSDEAttention | None]:
        h = self.proj(x)  # [N, hidden]
        utterance_mean = segment_mean(h, counts)[segment_ids(counts)]  # [N, hidden]: mean of the node's utterance, this modality
        gate = torch.sigmoid(self.gate(torch.cat([h, utterance_mean], dim=-1)))
        h = h * gate
        present = counts > 0
        out = h
        weights = None  # stays None when no utterance of the batch has this modality
        if x.shape[0] > 0:
            # Only utterances with nodes enter attention: a fully masked row would give NaN.
            padded = pad_segments(h, counts[present])  # values [B', L, hidden]
            attended, weights = self.attn(
                padded.values,
                padded.values,
                padded.values,
                key_padding_mask=~padded.mask,
                need_weights=return_attention,
                average_attn_weights=False,
            )
            out = h + self.dropout(padded.unpad(attended))
        if not return_attention:
            return self.norm(out), None
        attention = weights.detach() if weights is not None else None  # [B', heads, L, L]
        return self.norm(out), MSDEAttention(attention=attention, gate=gate.detach())

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, hidden={self.hidden}, num_heads={self.num_heads}"


class Projection(nn.Module):
    """MSDE switched off: a linear projection to the model width, same call signature.

    Shapes: x [N, in_dim] -> ([N, hidden], None); ``counts`` is accepted and ignored.
    """

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, hidden)

    def forward(self, x: torch.Tensor, counts: torch.Tensor, *, return_attention: bool = False) -> tuple[torch.Tensor, None]:
        return self.proj(x), None
