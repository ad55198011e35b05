"""Sync-TVA building blocks, one per paper component, the full model, and the model registry."""

from .caf import CAF, CAFAttention
from .hetero_gat import GATAttention, HeteroGAT, HeteroGATLayer
from .msde import MSDE, MSDEAttention, Projection
from .normalization import InputNormalizer
from .pooling import AttentionPooling
from .registry import build_model, list_models, register_model
from .sync_tva import AttentionMaps, SyncTVA, SyncTVAOutput

__all__ = [
    "MSDE",
    "MSDEAttention",
    "Projection",
    "GATAttention",
    "HeteroGATLayer",
    "HeteroGAT",
    "AttentionPooling",
    "InputNormalizer",
    "CAF",
    "CAFAttention",
    "SyncTVA",
    "SyncTVAOutput",
    "AttentionMaps",
    "build_model",
    "list_models",
    "register_model",
]
