"""Mini-batches of utterances as batched heterographs, in a seeded order: the one batching path of
training, evaluation, prediction and drawing.

Batches are planned over *units*: a unit is a list of utterance indices that must stay
together in one batch (one utterance for the per-utterance model, a whole dialogue for a
model that reads the conversation: :func:`batch_units`). :func:`plan_utterances` packs them
(:func:`plan_batches`: one overflow rule); :func:`iterate_batches` builds the planned batches and
:func:`planned_utterances` lists them. A planned batch can be split across the ranks of a
distributed run (``shard``) by whole units, so every rank sees whole dialogues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from dgl import DGLHeteroGraph
from torch.utils.data import DataLoader, Dataset

from ..records import Utterance, dialogue_units
from .builder import UtteranceGraphBuilder
from .dialogue import DialogueGraphBuilder

__all__ = [
    "Batch", "Unit", "Plan", "single_units", "batch_units", "plan_batches", "plan_utterances", "planned_utterances",
    "shard_units", "iterate_batches", "make_batch",
]

Unit = list[int]  # indices into the utterance list that stay in one batch
Plan = list[list[Unit]]  # the batches of one pass, each a list of units


@dataclass
class Batch:
    """A batched heterograph with its labels [B] and utterance ids, in the same order.

    ``dialogue`` is the batch's context graph (node ``i`` is utterance ``i``) for models that
    read the conversation, None for the per-utterance model.
    """

    graph: DGLHeteroGraph
    labels: torch.Tensor
    uids: list[str]
    dialogue: DGLHeteroGraph | None = None

    def to(self, device: torch.device | str) -> "Batch":
        dialogue = self.dialogue.to(device) if self.dialogue is not None else None
        return Batch(self.graph.to(device), self.labels.to(device), self.uids, dialogue)


def single_units(n: int) -> list[Unit]:
    """One unit per utterance: the per-utterance model's batching."""
    return [[i] for i in range(n)]


def batch_units(utterances: Sequence[Utterance], context: DialogueGraphBuilder | None) -> list[Unit]:
    """Whole dialogues for a model that reads the conversation (``context`` given), single utterances otherwise."""
    return dialogue_units(utterances) if context is not None else single_units(len(utterances))


def plan_batches(units: Sequence[Unit], batch_size: int, *, shuffle_seed: int | None = None) -> Plan:
    """Units in a seeded order (None keeps the given order), packed into batches of at most ``batch_size`` utterances.

    A unit larger than ``batch_size`` gets a batch of its own; with one-utterance units every
    batch but the last has exactly ``batch_size`` utterances.
    """
    order = list(range(len(units)))
    if shuffle_seed is not None:
        order = torch.randperm(len(units), generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
    batches: Plan = []
    current: list[Unit] = []
    size = 0
    for i in order:
        unit = units[i]
        if current and size + len(unit) > batch_size:
            batches.append(current)
            current, size = [], 0
        current.append(unit)
        size += len(unit)
    if current:
        batches.append(current)
    return batches


def plan_utterances(
    utterances: Sequence[Utterance], batch_size: int, *, context: DialogueGraphBuilder | None = None, shuffle_seed: int | None = None
) -> Plan:
    """The batches of one pass over ``utterances``: their :func:`batch_units` packed by :func:`plan_batches`."""
    return plan_batches(batch_units(utterances, context), batch_size, shuffle_seed=shuffle_seed)


def planned_utterances(utterances: Sequence[Utterance], plan: Plan) -> list[list[Utterance]]:
    """The utterances of each planned batch, in plan order (for callers that build batches themselves)."""
    return [[utterances[i] for unit in batch for i in unit] for batch in plan]


def shard_units(batch: list[Unit], rank: int, world_size: int) -> list[Unit]:
    """Rank ``rank``'s contiguous share of one planned batch (whole units; may be empty)."""
    bounds = [round(k * len(batch) / world_size) for k in range(world_size + 1)]
    return batch[bounds[rank] : bounds[rank + 1]]


def iterate_batches(
    utterances: Sequence[Utterance],
    builder: UtteranceGraphBuilder,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    plan: Plan | None = None,
    shard: tuple[int, int] | None = None,
    context: DialogueGraphBuilder | None = None,
    workers: int = 0,
) -> Iterator[Batch]:
    """Yield the batches of ``plan`` (default: :func:`plan_utterances` with ``batch_size`` and ``shuffle_seed``).

    With ``context`` (the batching of a model that reads the conversation) the default plan
    keeps whole dialogues and every batch carries its context graph.

    With ``shard=(rank, world_size)`` each planned batch yields only this rank's share (an empty
    share yields nothing), so ranks step through the same sequence of global batches.

    With ``workers > 0`` that many processes build the graphs of the next batches while the
    caller trains on the current one (``train.prefetch_workers``); the batches and their order
    are the same as without.
    """
    if plan is None:
        plan = plan_utterances(utterances, batch_size, context=context, shuffle_seed=shuffle_seed)
    owned = (shard_units(planned, *shard) if shard is not None else planned for planned in plan)
    batches = [chosen for own in owned if (chosen := [utterances[i] for unit in own for i in unit])]
    if workers == 0:
        yield from (make_batch(chosen, builder, context=context) for chosen in batches)
        return
    # batch_size=None: every item already is a whole batch; the loader keeps the item order. Its
    # own generator: the workers' seed must not be drawn from the global RNG (dropout's stream).
    loader = DataLoader(_PlannedBatches(batches, builder, context), batch_size=None, num_workers=workers, generator=torch.Generator())
    yield from loader


class _PlannedBatches(Dataset):
    """Planned batches of utterances; item ``i`` is batch ``i`` built (what a prefetching worker runs)."""

    def __init__(self, batches: list[list[Utterance]], builder: UtteranceGraphBuilder, context: DialogueGraphBuilder | None):
        self.batches, self.builder, self.context = batches, builder, context

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return make_batch(self.batches[i], self.builder, context=self.context)


def make_batch(
    utterances: Sequence[Utterance], builder: UtteranceGraphBuilder, *, context: DialogueGraphBuilder | None = None
) -> Batch:
    """One batch of ``utterances`` in the given order; with ``context``, also their context graph.

    The context graph joins the utterances of each dialogue as listed (runs of one dialogue id,
    see :func:`~sync_tva.records.dialogue_units`); no edge crosses dialogues.
    """
    graph = builder.build_batch([u.features for u in utterances])
    labels = torch.tensor([u.label for u in utterances], dtype=torch.long)
    dialogue = None
    if context is not None:
        dialogue = context.build_batch([[utterances[i].speaker for i in unit] for unit in dialogue_units(utterances)])
    return Batch(graph=graph, labels=labels, uids=[u.uid for u in utterances], dialogue=dialogue)
