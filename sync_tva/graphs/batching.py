"""Mini-batches of utterances as batched heterographs, in a seeded order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from dgl import DGLHeteroGraph

from ..records import Utterance
from .builder import UtteranceGraphBuilder

__all__ = ["Batch", "iterate_batches"]


@dataclass
class Batch:
    """A batched heterograph with its labels [B] and utterance ids, in the same order."""

    graph: DGLHeteroGraph
    labels: torch.Tensor
    uids: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.graph.to(device), self.labels.to(device), self.uids)


def iterate_batches(
    utterances: Sequence[Utterance],
    builder: UtteranceGraphBuilder,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
) -> Iterator[Batch]:
    """Yield batches; ``shuffle_seed`` fixes a permutation (None keeps the given order)."""
    order = list(range(len(utterances)))
    if shuffle_seed is not None:
        order = torch.randperm(len(utterances), generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
    for start in range(0, len(order), batch_size):
        chosen = [utterances[i] for i in order[start : start + batch_size]]
        graph = builder.build_batch([u.features for u in chosen])
        labels = torch.tensor([u.label for u in chosen], dtype=torch.long)
        yield Batch(graph=graph, labels=labels, uids=[u.uid for u in chosen])
