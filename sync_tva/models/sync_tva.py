"""SyncTVA: MSDE per modality -> heterogeneous GAT -> attention pooling -> CAF -> classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from dgl import DGLHeteroGraph
from torch import nn

from ..config import ModelConfig
from ..graphs.schema import GraphSchema
from .base import AttentionMaps, GraphModel, ModelOutput
from .caf import CAF
from .hetero_gat import HeteroGAT
from .msde import MSDE, Projection
from .normalization import InputNormalizer, SpeakerNormalizer
from .pooling import AttentionPooling
from .registry import register_model

__all__ = ["SyncTVA", "SyncTVAOutput", "AttentionMaps"]


@dataclass
class SyncTVAOutput(ModelOutput):
    """Logits [B, n_classes], optionally the attention maps, and the fused utterance vectors [B, D]."""

    fused: torch.Tensor | None = None


@register_model("sync_tva")
class SyncTVA(GraphModel):
    """The Sync-TVA model, built from the graph schema and the config (never from a sample graph).

    Shapes: a batched heterograph of B utterances with ``feat`` [N_t, in_dims[t]] on each node
    type in ``schema.node_types`` -> logits [B, n_classes].

    Example::

        schema = load_schema("utterance")
        model = SyncTVA(schema, {"text": 48, "audio": 32, "visual": 48}, n_classes=7, cfg=ModelConfig())
        model.normalizer.fit(u.features for u in train_utterances)  # model.normalize=none needs no fit
        out = model(builder.build_batch(batch_features))
    """

    def __init__(self, schema: GraphSchema, in_dims: dict[str, int], n_classes: int, cfg: ModelConfig):
        super().__init__()
        schema = schema.restrict(cfg.modalities)
        missing = [m for m in schema.node_types if m not in in_dims]
        if missing:
            raise ValueError(f"no feature width for modalities {missing}; the data provides {sorted(in_dims)}")
        self.schema, self.cfg = schema, cfg
        self.modalities = list(schema.node_types)
        d = cfg.hidden
        self.normalizer = InputNormalizer(self.modalities, in_dims, mode=cfg.normalize)  # fitted on train by build_experiment
        # Per-speaker statistics need every utterance given together, so it is applied to the records
        # (normalize_speakers) before batching; the module holds the training statistics it falls back on.
        by_speaker = [m for m in self.modalities if m in cfg.speaker_modalities] if cfg.normalize_by == "speaker" else []
        self.speaker_norm = SpeakerNormalizer(by_speaker, in_dims, min_utterances=cfg.speaker_min_utterances) if by_speaker else None
        self.enhance = nn.ModuleDict(
            {
                m: MSDE(in_dims[m], d, num_heads=cfg.msde_heads, dropout=cfg.dropout) if cfg.msde else Projection(in_dims[m], d)
                for m in self.modalities
            }
        )
        self.gat = HeteroGAT(
            schema, d, cfg.gat_layers, num_heads=cfg.gat_heads, dropout=cfg.dropout, attn_dropout=cfg.attn_dropout, impl=cfg.gat_impl
        )
        self.pool = nn.ModuleDict({m: AttentionPooling(d) for m in self.modalities})
        self.caf = CAF(self.modalities, d, num_heads=cfg.caf_heads, dropout=cfg.dropout) if cfg.caf else None
        fused_dim = d if cfg.caf else d * len(self.modalities)  # CAF off: concatenation
        self.classifier = nn.Sequential(nn.Linear(fused_dim, d), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(d, n_classes))

    def forward(self, g: DGLHeteroGraph, *, dialogue: DGLHeteroGraph | None = None, return_attention: bool = False) -> SyncTVAOutput:
        """``dialogue`` is unused: this model reads each utterance alone."""
        counts = {m: g.batch_num_nodes(m) for m in self.modalities}
        h, msde = {}, {}
        for m in self.modalities:
            x = self.normalizer(m, g.nodes[m].data["feat"])  # [N_m, in_dims[m]], standardised per feature
            h[m], msde[m] = self.enhance[m](x, counts[m], return_attention=return_attention)
        h, gat = self.gat(g, h, return_attention=return_attention)
        summaries, pooling = {}, {}
        for m in self.modalities:
            summaries[m], pooling[m] = self.pool[m](g, h[m], m)
        caf = None
        if self.caf is not None:
            fused, caf = self.caf(summaries, h, counts, return_attention=return_attention)
        else:
            fused = torch.cat([summaries[m] for m in self.modalities], dim=-1)  # [B, M * hidden]
        logits = self.classifier(fused)
        if not return_attention:
            return SyncTVAOutput(logits=logits, fused=fused)
        attention = AttentionMaps(
            gat=gat,
            msde={m: msde[m].attention if msde[m] is not None else None for m in self.modalities},
            msde_gates={m: msde[m].gate if msde[m] is not None else None for m in self.modalities},
            pooling={m: w.detach() for m, w in pooling.items()},
            caf=caf,
        )
        return SyncTVAOutput(logits=logits, fused=fused, attention=attention)
