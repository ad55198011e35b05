"""Utterance ids that readers share: file-name-safe ids and one uniqueness check for every source."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import DataError
from ..records import RawUtterance, Utterance

__all__ = ["safe_uid", "check_unique"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_uid(*parts: object) -> str:
    """An utterance id from its identifying values, usable as a file name on every platform."""
    return "_".join(_UNSAFE.sub("-", str(p)).strip("-") or "x" for p in parts)


def check_unique(utts: Iterable[RawUtterance | Utterance], where: str) -> None:
    """Raise a DataError naming both records when two utterances of one split share an id.

    Ids key the feature store (per split), predictions and drawings, so every source is checked
    here, split by split (the data registry calls it after each reader). Ids may repeat across
    splits: MELD's ``dia0_utt0`` exists in train, dev and test.
    """
    seen: dict[str, str] = {}
    for u in utts:
        origin = getattr(u, "source", "") or f"dialogue {u.dialogue!r}"
        if u.uid in seen:
            raise DataError(
                f"{where}: utterance id {u.uid!r} appears twice ({seen[u.uid]} and {origin}); "
                "ids must be unique within a split (for CSVs, check data.columns.dialogue and data.columns.utterance)"
            )
        seen[u.uid] = origin
