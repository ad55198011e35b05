"""Helpers for ragged per-utterance node sets: padding to ``[B, L, D]`` and segment means.

A batched graph stores each node type's nodes back to back, utterance after utterance;
``counts[b]`` is how many of them belong to utterance ``b``. Attention inside one utterance
needs them as a padded block with a mask; these helpers convert both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Padded", "pad_segments", "segment_mean", "segment_sum", "segment_softmax", "segment_ids", "segment_starts"]


@dataclass
class Padded:
    """Padded view of ragged nodes: ``values[b, i]`` is node ``i`` of utterance ``b``.

    Shapes: ``values`` [B, L, D]; ``mask`` [B, L] (True on real nodes); ``graph`` and
    ``position`` [N] give each original node's place, so ``values[graph, position]`` undoes it.
    """

    values: torch.Tensor
    mask: torch.Tensor
    graph: torch.Tensor
    position: torch.Tensor

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """``[B, L, ...]`` back to ``[N, ...]`` in the original node order."""
        return padded[self.graph, self.position]


def segment_ids(counts: torch.Tensor) -> torch.Tensor:
    """``[N]`` utterance index of every node, from per-utterance ``counts`` [B]."""
    return torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)


def segment_starts(counts: torch.Tensor) -> torch.Tensor:
    """``[B]`` index of each utterance's first row in the back-to-back layout (exclusive prefix sum)."""
    return torch.cumsum(counts, 0) - counts


def pad_segments(x: torch.Tensor, counts: torch.Tensor) -> Padded:
    """Pad ``x`` [N, D] into ``[B, L, D]`` with ``L = max(counts)`` (at least 1)."""
    graph = segment_ids(counts)
    position = torch.arange(x.shape[0], device=x.device) - segment_starts(counts)[graph]
    length = max(int(counts.max()) if counts.numel() else 0, 1)
    values = x.new_zeros(counts.numel(), length, *x.shape[1:])
    values[graph, position] = x
    mask = torch.zeros(counts.numel(), length, dtype=torch.bool, device=x.device)
    mask[graph, position] = True
    return Padded(values=values, mask=mask, graph=graph, position=position)


def segment_sum(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``[B, ...]`` sum of each utterance's rows of ``x`` [N, ...]; zero for an utterance with none."""
    return x.new_zeros(counts.numel(), *x.shape[1:]).index_add_(0, segment_ids(counts), x)


def segment_mean(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` mean of each utterance's rows of ``x`` [N, D]; zero for an utterance with none."""
    return segment_sum(x, counts) / counts.clamp(min=1).unsqueeze(1).to(x.dtype)


def segment_softmax(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``[N, ...]`` softmax of ``x`` over each utterance's rows, column by column.

    The per-utterance maximum is subtracted for stability (detached: softmax ignores a shift).
    """
    ids = segment_ids(counts)
    index = ids.view(-1, *[1] * (x.dim() - 1)).expand_as(x)
    top = x.new_full((counts.numel(), *x.shape[1:]), float("-inf")).scatter_reduce_(0, index, x.detach(), "amax")
    e = torch.exp(x - top[ids])
    return e / segment_sum(e, counts)[ids]
