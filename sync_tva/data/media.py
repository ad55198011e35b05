"""Records of a raw data set: utterances that still point at transcripts and media files.

Readers (csv, meld, iemocap) produce :class:`RawSplits`; ``sync_tva.features`` turns each
:class:`RawUtterance` into node features through the feature store, and
:func:`load_with_features` gives the model its :class:`DatasetSplits`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .records import DatasetSplits
from .splits import carve_dev

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["MediaRef", "RawSplits", "RawUtterance", "load_with_features", "safe_uid", "split_dev_by_dialogue"]

SPLITS = ("train", "dev", "test")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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


def safe_uid(*parts: object) -> str:
    """An utterance id from its identifying values, usable as a file name on every platform."""
    return "_".join(_UNSAFE.sub("-", str(p)).strip("-") or "x" for p in parts)


def check_unique(utts: list[RawUtterance], where: str) -> None:
    """Raise a DataError naming both rows when two records share an utterance id."""
    seen: dict[str, str] = {}
    for u in utts:
        if u.uid in seen:
            raise DataError(
                f"{where}: utterance id {u.uid!r} appears twice ({seen[u.uid]} and {u.source}); "
                "check data.columns.dialogue and data.columns.utterance"
            )
        seen[u.uid] = u.source


def split_dev_by_dialogue(
    train: list[RawUtterance], fraction: float, seed: int
) -> tuple[list[RawUtterance], list[RawUtterance]]:
    """Hold out a seeded ``fraction`` of the training dialogues as dev (see :func:`carve_dev`); returns ``(train, dev)``."""
    held = set(carve_dev([u.dialogue for u in train], fraction, seed)[1])
    return [u for u in train if u.dialogue not in held], [u for u in train if u.dialogue in held]


def load_with_features(cfg: Config, raw: RawSplits) -> DatasetSplits:
    """Extract whatever the feature store lacks for ``raw``, then read every split back from it."""
    # Imported here: data readers sit above features in the pipeline; only this bridge looks down.
    from ..features.pipeline import materialize

    return materialize(cfg, raw)
