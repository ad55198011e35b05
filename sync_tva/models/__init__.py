"""Sync-TVA building blocks, one per paper component, and the full model."""

from .caf import CAF, CAFAttention
from .hetero_gat import AttentiveGATConv, HeteroGAT, HeteroGATLayer
from .msde import MSDE, Projection
from .pooling import AttentionPooling
from .sync_tva import AttentionMaps, SyncTVA, SyncTVAOutput

__all__ = [
    "MSDE",
    "Projection",
    "AttentiveGATConv",
    "HeteroGATLayer",
    "HeteroGAT",
    "AttentionPooling",
    "CAF",
    "CAFAttention",
    "SyncTVA",
    "SyncTVAOutput",
    "AttentionMaps",
]
