"""What every extractor shares: its output record, its interface, its fingerprint and its store key.

An extractor carries its model and its preprocessing; :meth:`Extractor.describe` lists both
and :attr:`Extractor.fingerprint` hashes that description, so the feature store never mixes
features made by different models, weights or sampling settings; :attr:`Extractor.key` is the
store's name for them.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..records import RawUtterance

__all__ = ["ExtractionFailure", "Extractor", "NodeFeatures", "store_key", "weights_digest"]


def store_key(modality: str, fingerprint: str) -> str:
    """The store's name for one extractor's features: its modality and the fingerprint of its weights and preprocessing."""
    return f"{modality}-{fingerprint}"


@dataclass
class NodeFeatures:
    """One modality of one utterance: ``feat`` float32 ``[n_nodes, dim]``, optional spans, token labels, image crops."""

    feat: np.ndarray
    spans: np.ndarray | None = None  # float32 [n_nodes, 2]: (start_s, end_s) relative to the utterance
    tokens: list[str] = field(default_factory=list)  # text: one label per node, for drawings
    boxes: np.ndarray | None = None  # visual: float32 [n_nodes, 4], the image each node read as (x0, y0, x1, y1) fractions of the frame
    thumbs: np.ndarray | None = None  # visual: uint8 [n_nodes, T, T, 3], that image shrunk, for drawings


class ExtractionFailure(Exception):
    """One utterance's media could not be turned into features; the store records it and the run goes on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class Extractor(ABC):
    """Turns a batch of raw utterances into node features for one modality.

    Subclasses load their model in ``__init__`` (so missing weights fail before any work
    starts), set :attr:`modality` and :attr:`dim`, and implement :meth:`describe` and
    :meth:`extract`; one that reads more than the utterance itself (the text extractor's
    previous turns) overrides :meth:`prepare`.
    """

    modality: str
    dim: int
    finetuned: Path | None = None  # the fine-tuned encoder folder the features come from (text: see .finetune); a run keeps it

    def prepare(self, split: str, utts: list[RawUtterance]) -> None:  # noqa: B027 (a hook most extractors leave empty)
        """Read the whole ``split`` before any of it is extracted (a shard's extraction still sees every turn); nothing by default."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Model, weights and preprocessing as plain JSON data; what the fingerprint hashes."""

    @abstractmethod
    def extract(self, utts: list[RawUtterance]) -> list[NodeFeatures | ExtractionFailure]:
        """Features of each utterance, or the failure that stopped it, in input order."""

    def take_notes(self) -> list[str]:
        """Counts worth a line after an extraction (frames skipped, fallbacks taken) since the last call,
        which starts the counts afresh; none by default."""
        return []

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of :meth:`describe`: same fingerprint, interchangeable features (fixed after init)."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def key(self) -> str:
        """The store's name for this extractor's features (:func:`store_key`)."""
        return store_key(self.modality, self.fingerprint)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(modality={self.modality!r}, dim={self.dim}, fingerprint={self.fingerprint!r})"


def weights_digest(module: torch.nn.Module) -> str:
    """A hash of a network's exact weights: each tensor's name, dtype, shape and raw bytes, by name.

    Why bytes, not a float reduction: a parallel ``sum()`` depends on the number of torch
    threads, so the same weights would key two cache folders. Hashing roberta-large's 1.4 GB
    takes a few seconds (SHA-256 runs at 0.3-1 GB/s), once per extractor as it loads.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(flat.view(torch.uint8).numpy())  # the raw bytes, uncopied; a uint8 view also serves bfloat16
    return h.hexdigest()[:16]
