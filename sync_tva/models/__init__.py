"""Sync-TVA building blocks, one per paper component, the full model, and the model registry."""

from .base import AttentionMaps, GraphModel, ModelOutput, eval_mode
from .caf import CAF, CAFAttention
from .context import SyncTVAContext
from .fused_gat import FusedHeteroGATLayer
from .hetero_gat import GATAttention, HeteroGAT, HeteroGATLayer
from .msde import MSDE, MSDEAttention, Projection
from .normalization import InputNormalizer, SpeakerNormalizer, normalize_speakers, speaker_normalizer
from .pooling import AttentionPooling
from .registry import build_model, list_models, register_model
from .sync_tva import SyncTVA, SyncTVAOutput

__all__ = [
    "GraphModel",
    "ModelOutput",
    "eval_mode",
    "MSDE",
    "MSDEAttention",
    "Projection",
    "GATAttention",
    "HeteroGATLayer",
    "FusedHeteroGATLayer",
    "HeteroGAT",
    "AttentionPooling",
    "InputNormalizer",
    "SpeakerNormalizer",
    "normalize_speakers",
    "speaker_normalizer",
    "CAF",
    "CAFAttention",
    "SyncTVA",
    "SyncTVAOutput",
    "AttentionMaps",
    "SyncTVAContext",
    "build_model",
    "list_models",
    "register_model",
]
