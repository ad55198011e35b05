"""Raw media to node features: text (transformers), visual (ResNet-50), audio (openSMILE or a speech encoder), a resumable store."""

from .base import ExtractionFailure, Extractor, NodeFeatures
from .pipeline import ExtractionReport, build_extractors, extract, load_dataset, materialize
from .store import FeatureStore, merge_stores

__all__ = [
    "ExtractionFailure",
    "ExtractionReport",
    "Extractor",
    "FeatureStore",
    "NodeFeatures",
    "build_extractors",
    "extract",
    "load_dataset",
    "materialize",
    "merge_stores",
]
