"""Sync-TVA with conversation context: the utterance encoder, then relational graph attention over each dialogue.

Beyond the paper (its Sec. 5 names multi-turn context as future work), in the manner of
DialogueGCN/MMGCN: Sync-TVA (MSDE, hetero GAT, pooling, CAF) turns every utterance into its
fused vector; a GRU reads each dialogue's vectors in turn order (``model.context.sequence``,
DialogueGCN's sequential encoder); a stack of relational GAT layers (one ``GATConv`` per context
relation, summed: :class:`~sync_tva.models.hetero_gat.HeteroGAT` built from the dialogue schema)
lets each utterance hear the turns around it; the classifier reads the utterance vector together
with its context vector. ``model.context.layers=0`` is the per-utterance model exactly: no GRU,
no context vector, and ``utterance`` + ``output`` are Sync-TVA's classifier layer for layer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import torch
from dgl import DGLHeteroGraph
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import ModelConfig
from ..graphs.dialogue import NODE_TYPE, DialogueSchema, dialogue_schema_from_dict, load_dialogue_schema
from ..graphs.schema import GraphSchema
from .base import GraphModel
from .hetero_gat import GATAttention, HeteroGAT
from .registry import register_model
from .segments import pad_segments
from .sync_tva import SyncTVA, SyncTVAOutput

__all__ = ["SyncTVAContext", "DialogueGRU"]


class DialogueGRU(nn.Module):
    """A GRU over each dialogue's utterance vectors in turn order (DialogueGCN's sequential context encoder).

    Bidirectional unless ``bidirectional=False`` (``model.context.future=0``: an online model
    must not read later turns); the two directions' states are summed, so the width stays
    ``hidden``. Shapes: ``u`` [B, hidden] utterances, dialogue after dialogue, each in turn
    order, ``counts`` [D] utterances per dialogue -> [B, hidden].
    """

    def __init__(self, hidden: int, *, bidirectional: bool = True):
        super().__init__()
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=bidirectional)

    def forward(self, u: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        padded = pad_segments(u, counts)  # [D, L, hidden]
        packed = pack_padded_sequence(padded.values, counts.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=padded.values.shape[1])
        if self.gru.bidirectional:
            states = states.view(*states.shape[:2], 2, -1).sum(dim=2)  # forward + backward direction
        return padded.unpad(states)


@register_model("sync_tva_context")
class SyncTVAContext(GraphModel):
    """Sync-TVA utterance encoder + relational graph attention over the dialogue + classifier on both.

    Shapes: a batched utterance heterograph of B utterances and their context graph ``dialogue``
    (B ``utterance`` nodes, one graph per dialogue) -> logits [B, n_classes].

    Example::

        model = SyncTVAContext(load_schema("utterance"), {"text": 48, "audio": 32, "visual": 48}, 7, ModelConfig())
        batch = make_batch(utterances, builder, context=model.dialogue_builder())
        out = model(batch.graph, dialogue=batch.dialogue, return_attention=True)
    """

    needs_dialogue: ClassVar[bool] = True  # batch whole dialogues with their context graph (GraphModel.dialogue_builder)

    def __init__(
        self, schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig, *, context_schema: dict[str, Any] | None = None
    ):
        """``context_schema`` (default: loaded from ``model.context.schema``) is the mapping :meth:`checkpoint_parts` stored."""
        super().__init__()
        ctx = cfg.context
        self.cfg = cfg
        given = load_dialogue_schema(ctx.schema) if context_schema is None else dialogue_schema_from_dict(context_schema, "checkpoint: context_schema")
        self.dialogue_schema: DialogueSchema = given.resolve(past=ctx.past, future=ctx.future, speakers=ctx.speakers)
        self.encoder = SyncTVA(schema, in_dims, n_classes, cfg)
        fused_dim = self.encoder.classifier[0].in_features  # hidden with CAF, hidden * modalities without
        # Its own classifier is replaced by ours, which also reads the context (torchvision's idiom).
        self.encoder.classifier = nn.Identity()
        d = cfg.hidden
        # Sync-TVA's classifier split in two: its hidden layer gives the utterance vector that the
        # dialogue passes around (already non-linear in the fused vector, so a neighbour's emotion
        # is readable from it), and its output layer also reads the context vector.
        self.utterance = nn.Sequential(nn.Linear(fused_dim, d), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.context = HeteroGAT(
            self.dialogue_schema.graph_schema(),
            d,
            ctx.layers,
            num_heads=ctx.heads,
            dropout=cfg.dropout,
            attn_dropout=cfg.attn_dropout,
            impl=cfg.gat_impl,  # the same implementation choice as the encoder's
        )
        # Turn order first, then the graph (DialogueGCN): the GRU carries the dialogue's drift,
        # the relations who said what to whom. None without graph layers (layers=0: per-utterance).
        self.sequence = (
            DialogueGRU(d, bidirectional=ctx.future > 0) if ctx.sequence == "gru" and ctx.layers else None
        )
        self.output = nn.Linear(d * 2 if ctx.layers else d, n_classes)

    def checkpoint_parts(self) -> dict[str, Any]:
        """What a checkpoint keeps to rebuild this model without its schema YAML (given back to ``__init__``)."""
        return {"context_schema": self.dialogue_schema.to_dict()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(modalities={self.encoder.modalities}, hidden={self.cfg.hidden}, "
            f"context_layers={len(self.context.layers)}, sequence={self.cfg.context.sequence if self.sequence else 'none'}, "
            f"context={self.dialogue_schema!r})"
        )

    def forward(
        self, g: DGLHeteroGraph, *, dialogue: DGLHeteroGraph | None = None, return_attention: bool = False
    ) -> SyncTVAOutput:
        encoded = self.encoder(g, return_attention=return_attention)
        fused = encoded.fused  # [B, fused_dim]
        u = self.utterance(fused)  # [B, hidden]
        layers: list[GATAttention] = []
        if not self.context.layers:
            features = u
        else:
            if dialogue is None:
                raise ValueError(
                    "sync_tva_context needs the batch's context graph: call model(batch.graph, dialogue=batch.dialogue) "
                    "with batches built with the model's dialogue_builder() (sync_tva.graphs.iterate_batches)"
                )
            if dialogue.num_nodes(NODE_TYPE) != fused.shape[0]:
                raise ValueError(
                    f"the context graph has {dialogue.num_nodes(NODE_TYPE)} utterance nodes, the batch {fused.shape[0]} utterances"
                )
            x = self.sequence(u, dialogue.batch_num_nodes(NODE_TYPE)) if self.sequence is not None else u
            h, layers = self.context(dialogue, {NODE_TYPE: x}, return_attention=return_attention)
            features = torch.cat([u, h[NODE_TYPE]], dim=-1)  # [B, 2 * hidden]: utterance vector; context vector
        logits = self.output(features)
        if not return_attention:
            return SyncTVAOutput(logits=logits, fused=fused)
        return SyncTVAOutput(logits=logits, fused=fused, attention=replace(encoded.attention, context=layers))
