"""The model contract: what every registered model is, says and returns (like Hugging Face's ``PreTrainedModel``).

Training, evaluation, prediction and drawing call a model only through :class:`GraphModel`:
``needs_dialogue`` (batch whole dialogues with their context graph), ``dialogue_builder()``
(that graph's builder), ``checkpoint_parts()`` (plain data its checkpoint keeps) and one
``forward(g, *, dialogue=None, return_attention=False)`` returning a :class:`ModelOutput`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import torch
from dgl import DGLHeteroGraph
from torch import nn

from ..graphs.dialogue import DialogueGraphBuilder, DialogueSchema
from .caf import CAFAttention
from .hetero_gat import GATAttention

__all__ = ["GraphModel", "ModelOutput", "AttentionMaps", "eval_mode"]


@dataclass
class AttentionMaps:
    """Every attention the model computed in one forward pass (all detached), what ``sync_tva.viz`` draws.

    ``gat[l][etype]``: [E, heads, 1] per layer and canonical edge type; ``msde[m]``:
    [B', heads, L, L] over utterances that have modality ``m``; ``msde_gates[m]``: [N_m, hidden];
    ``pooling[m]``: [N_m, 1]; ``caf``: cross-attention and modality gates (None when CAF is off);
    ``context[l][etype]``: [E, heads, 1] per layer and relation of the batch's context graph
    (``Batch.dialogue``, edge ``e`` of ``etype`` is its edge ``e``) for a model that reads the
    conversation, empty otherwise. A model without one of these blocks gives None per modality
    (``msde``, ``msde_gates``), None (``caf``) or leaves ``context`` empty.
    """

    gat: list[GATAttention]
    msde: dict[str, torch.Tensor | None]
    msde_gates: dict[str, torch.Tensor | None]
    pooling: dict[str, torch.Tensor]
    caf: CAFAttention | None
    context: list[GATAttention] = field(default_factory=list)


@dataclass
class ModelOutput:
    """Logits [B, n_classes] and, when asked for (``return_attention=True``), the attention maps."""

    logits: torch.Tensor
    attention: AttentionMaps | None = None


class GraphModel(nn.Module):
    """The base class of every registered model (``register_model`` refuses any other class).

    A subclass is built as ``cls(schema, in_dims, n_classes, cfg, **checkpoint_parts)`` and
    implements :meth:`forward`. One that reads the conversation sets ``needs_dialogue = True``
    and ``dialogue_schema`` (its resolved :class:`~sync_tva.graphs.dialogue.DialogueSchema`):
    its batches then hold whole dialogues and their context graph.
    """

    needs_dialogue: ClassVar[bool] = False  # batch whole dialogues and pass their context graph as ``dialogue``
    dialogue_schema: DialogueSchema | None = None  # the context graph's resolved schema, for a model that needs dialogues

    def dialogue_builder(self) -> DialogueGraphBuilder | None:
        """The builder of this model's context graphs (None: batched utterance by utterance)."""
        if not self.needs_dialogue:
            return None
        if self.dialogue_schema is None:
            raise TypeError(f"{type(self).__name__} sets needs_dialogue but no dialogue_schema")
        return DialogueGraphBuilder(self.dialogue_schema)

    def checkpoint_parts(self) -> dict[str, Any]:
        """Plain data a checkpoint keeps to rebuild this model without outside files (given back to ``__init__``)."""
        return {}

    def forward(self, g: DGLHeteroGraph, *, dialogue: DGLHeteroGraph | None = None, return_attention: bool = False) -> ModelOutput:
        """Logits of the batched utterance graph ``g`` (``dialogue``: its context graph, for a model that needs one)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(g, *, dialogue=None, return_attention=False)")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``model`` in eval mode (no dropout) and give it back in the mode it had."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
