"""The typed records every stage passes on: raw utterances that point at media, and featured utterances.

They sit at the bottom of the pipeline: readers (``data``) produce :class:`RawSplits` or
:class:`DatasetSplits`, ``features`` turns raw records into featured ones, and ``graphs``,
``models``, ``train`` and ``inference`` consume :class:`Utterance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataError

__all__ = [
    "SPLITS",
    "MediaRef",
    "RawUtterance",
    "RawSplits",
    "Utterance",
    "DatasetSplits",
    "check_utterance",
    "dialogue_units",
]


SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class MediaRef:
    """A media file, optionally a time window of it (IEMOCAP cuts utterances out of dialogue videos)."""

    path: Path
    start_s: float | None = None  # window start in seconds; None: from the beginning
    end_s: float | None = None  # window end in seconds; None: to the end

    def __str__(self) -> str:
        if self.start_s is None and self.end_s is None:
            return str(self.path)
        return f"{self.path}[{self.start_s}-{self.end_s}s]"


@dataclass
class RawUtterance:
    """One labelled utterance before feature extraction; ``audio``/``video`` are None for text-only data."""

    uid: str  # unique within the data set and safe as a file name (see safe_uid)
    dialogue: str
    speaker: str
    label: int
    text: str
    audio: MediaRef | None = None
    video: MediaRef | None = None
    source: str = ""  # where the record came from (file and row), for error messages
    session: str = ""  # the recording session (IEMOCAP's Ses01..Ses05, a CSV's data.columns.session); "": none


@dataclass
class RawSplits:
    """A raw data set: name, label names in index order, and the three splits."""

    name: str
    labels: tuple[str, ...]
    train: list[RawUtterance]
    dev: list[RawUtterance]
    test: list[RawUtterance]
    notes: list[str] = field(default_factory=list)  # rows skipped on purpose (e.g. unused labels), reported once

    def splits(self) -> dict[str, list[RawUtterance]]:
        """``{"train": [...], "dev": [...], "test": [...]}``."""
        return {"train": self.train, "dev": self.dev, "test": self.test}

    def media_modalities(self) -> list[str]:
        """The modalities this data set can supply: text always, audio/visual when any record has media."""
        utts = [u for split in self.splits().values() for u in split]
        mods = ["text"]
        if any(u.audio is not None for u in utts):
            mods.append("audio")
        if any(u.video is not None for u in utts):
            mods.append("visual")
        return mods

@dataclass
class Utterance:
    """One utterance: identity, label index and per-modality node features.

    Its dialogue and speaker come from the data; its turn is its position among its dialogue's
    utterances in the list it is in (every reader lists dialogues whole, in turn order; see
    :func:`dialogue_units`). ``features[m]`` is a float32 array ``[n_nodes, dim]``; a modality
    may have zero nodes.
    ``spans[m]`` optionally gives each node's ``(start_s, end_s)`` time span for drawings, and
    ``boxes[m]`` / ``thumbs[m]`` the face (or frame) box and thumbnail each visual node read.
    """

    uid: str
    dialogue: str
    speaker: str
    label: int
    features: dict[str, np.ndarray]
    text: str = ""
    tokens: list[str] = field(default_factory=list)  # one label per text node, for drawings
    spans: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # visual: float32 [n_nodes, 4] image box per node, (x0, y0, x1, y1) as fractions of the frame
    thumbs: dict[str, np.ndarray] = field(default_factory=dict)  # visual: uint8 [n_nodes, T, T, 3] thumbnail of the image each node read
    session: str = ""  # the recording session, from the raw record (``--folds session``); "": the source has none


@dataclass
class DatasetSplits:
    """A labelled data set split three ways, with its label names in index order."""

    name: str
    labels: tuple[str, ...]
    train: list[Utterance]
    dev: list[Utterance]
    test: list[Utterance]
    text_encoder: str | None = None  # the fine-tuned text-encoder folder the text features came from (None: the configured encoder)

    def split(self, name: str) -> list[Utterance]:
        """The utterances of ``train``, ``dev`` or ``test``."""
        if name not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {name!r}; choose from train, dev, test")
        return getattr(self, name)

    def dialogues(self, name: str) -> list[list[Utterance]]:
        """The utterances of split ``name`` grouped by dialogue, each dialogue in turn order."""
        utts = self.split(name)
        return [[utts[i] for i in unit] for unit in dialogue_units(utts, f"data set {self.name!r}, {name} split")]

    def feature_dims(self) -> dict[str, int]:
        """Width of each modality's node features, read from the training split."""
        dims: dict[str, int] = {}
        for utt in self.train:
            for mod, arr in utt.features.items():
                dims.setdefault(mod, int(arr.shape[1]))
        return dims


def dialogue_units(utterances: Sequence[Utterance], source: str = "utterance list") -> list[list[int]]:
    """Indices of each dialogue's utterances, dialogues in order of appearance; position in a unit is the turn.

    This is the one place that says what a dialogue and a turn are for batching and dialogue
    graphs: a run of consecutive utterances with the same ``dialogue``. A dialogue that comes
    back after another one started is an error (its turns would be ambiguous), named with both
    positions.
    """
    units: list[list[int]] = []
    started: dict[str, int] = {}
    for i, utt in enumerate(utterances):
        if units and utterances[units[-1][0]].dialogue == utt.dialogue:
            units[-1].append(i)
            continue
        if utt.dialogue in started:
            raise DataError(
                f"{source}: dialogue {utt.dialogue!r} starts at position {started[utt.dialogue]} and again at {i} "
                f"(utterance {utt.uid!r}); list each dialogue's utterances together, in turn order"
            )
        started[utt.dialogue] = i
        units.append([i])
    return units


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
