"""Typed records that every data source produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

__all__ = ["Utterance", "DatasetSplits", "check_utterance"]


@dataclass
class Utterance:
    """One utterance: identity, label index and per-modality node features.

    ``features[m]`` is a float32 array ``[n_nodes, dim]``; a modality may have zero nodes.
    ``spans[m]`` optionally gives each node's ``(start_s, end_s)`` time span for drawings.
    """

    uid: str
    dialogue: str
    speaker: str
    label: int
    features: dict[str, np.ndarray]
    text: str = ""
    tokens: list[str] = field(default_factory=list)  # one label per text node, for drawings
    spans: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class DatasetSplits:
    """A labelled data set split three ways, with its label names in index order."""

    name: str
    labels: tuple[str, ...]
    train: list[Utterance]
    dev: list[Utterance]
    test: list[Utterance]

    def split(self, name: str) -> list[Utterance]:
        """The utterances of ``train``, ``dev`` or ``test``."""
        if name not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {name!r}; choose from train, dev, test")
        return getattr(self, name)

    def feature_dims(self) -> dict[str, int]:
        """Width of each modality's node features, read from the training split."""
        dims: dict[str, int] = {}
        for utt in self.train:
            for mod, arr in utt.features.items():
                dims.setdefault(mod, int(arr.shape[1]))
        return dims


def check_utterance(utt: Utterance, n_labels: int, source: str) -> None:
    """Raise a ValueError naming ``source`` and the utterance when a record is malformed."""
    where = f"{source}: dialogue {utt.dialogue!r}, utterance {utt.uid!r}"
    if not 0 <= utt.label < n_labels:
        raise DataError(f"{where}: label {utt.label} outside 0..{n_labels - 1}")
    for mod, arr in utt.features.items():
        if not isinstance(arr, np.ndarray) or arr.ndim != 2:
            raise DataError(f"{where}: {mod} features must be a 2-d array [n_nodes, dim], got {getattr(arr, 'shape', type(arr))}")
        if not np.isfinite(arr).all():
            raise DataError(f"{where}: {mod} features contain NaN or infinity")
