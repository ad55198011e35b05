"""From named pickle fields to :class:`Utterance` records: ids, labels, speakers and feature rows.

Every utterance becomes one node per modality (a ``[1, dim]`` array). Each check names the
file, the dialogue and, where it applies, the utterance, so a bad row in a file of thousands
can be found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import DataError
from ...records import Utterance, check_utterance
from .layouts import PickleLayout
from .unpack import Fields

__all__ = ["RecordBuilder", "feature_rows", "label_index", "speaker_name"]


def label_index(value: Any, n_labels: int, where: str) -> int:
    """An integral label inside ``0..n_labels-1`` (files store ints or integral floats)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{where}: label {value!r} is not an integer class index")
    if not float(value).is_integer() or not 0 <= int(value) < n_labels:
        raise DataError(f"{where}: label {value!r} outside 0..{n_labels - 1}")
    return int(value)


def speaker_name(value: Any, layout: PickleLayout, where: str) -> str:
    """The speaker as the layout writes it: a name stays (``'M'``), a one-hot vector becomes ``speaker<index>``."""
    if layout.speakers == "name":
        if isinstance(value, bytes):  # Python-2 era files
            return value.decode("latin1")
        if isinstance(value, (str, int, np.integer)):
            return str(value)
        raise DataError(
            f"{where}: speaker {value!r} is not a name; data.layout={layout.name} writes speakers as names"
        )
    try:
        vec = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        vec = np.zeros(0)
    if vec.ndim != 1 or not len(vec):
        raise DataError(
            f"{where}: speaker {value!r} is not a one-hot vector; data.layout={layout.name} writes speakers as one-hot vectors"
        )
    return f"speaker{int(np.argmax(vec))}"


def feature_rows(value: Any, uids: Sequence[str], name: str, where: str, width: int | None) -> np.ndarray:
    """One dialogue's feature field ``name`` as float32 ``[n_utterances, dim]``, each row checked against ``width``."""
    if not isinstance(value, (list, tuple, np.ndarray)) or getattr(value, "ndim", 1) == 0:
        raise DataError(
            f"{where}: {name} must be a list or array of per-utterance vectors, got {type(value).__name__}"
        )
    rows = list(value)
    if len(rows) != len(uids):
        first_bad = uids[len(rows)] if len(rows) < len(uids) else f"extra row {len(uids)}"
        raise DataError(
            f"{where}: {name} has {len(rows)} rows but the dialogue has {len(uids)} labelled utterances "
            f"(first without a match: {first_bad})"
        )
    out = []
    for uid, row in zip(uids, rows):
        try:
            vec = np.asarray(row, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{where}, utterance {uid!r}: {name} is not a numeric vector") from None
        if vec.ndim != 1 or (width is not None and vec.shape[0] != width):
            expected = f"[{width}]" if width is not None else "a 1-d vector"
            raise DataError(
                f"{where}, utterance {uid!r}: {name} has shape {list(vec.shape)}, expected {expected}"
            )
        width = vec.shape[0]
        out.append(vec)
    return np.stack(out) if out else np.zeros((0, width or 0), dtype=np.float32)


def _as_text(value: Any) -> str:
    """A sentence as str; Python-2 era files hold latin-1 bytes."""
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


@dataclass
class RecordBuilder:
    """Turns one file's named fields into checked :class:`Utterance` records, dialogue by dialogue.

    ``modalities`` are the ones to load (a subset of the layout's). ``widths`` (feature field ->
    dim) is fixed by the first dialogue read, so a field has one width across the whole file.
    """

    fields: Fields
    layout: PickleLayout
    labels: tuple[str, ...]
    modalities: tuple[str, ...]
    source: str
    widths: dict[str, int] = field(default_factory=dict)

    def records(self, dialogues: Sequence[Any]) -> list[Utterance]:
        """The records of ``dialogues`` in order, each checked with :func:`check_utterance`."""
        utts = [u for d in dialogues for u in self.dialogue(d)]
        for utt in utts:
            check_utterance(utt, len(self.labels), self.source)
        return utts

    def dialogue(self, dialogue: Any) -> list[Utterance]:
        """The records of one dialogue; its label list sets how many utterances every field must have."""
        where = f"{self.source}: dialogue {dialogue!r}"
        raw_labels = list(self.fields["labels"][dialogue])
        n = len(raw_labels)
        utt_ids = self._per_utterance("ids", dialogue, n, where) if "ids" in self.fields else list(range(n))
        uids = [self.layout.uid.format(dialogue=dialogue, utt=u) for u in utt_ids]
        labels = [
            label_index(v, len(self.labels), f"{where}, utterance {uid!r}")
            for uid, v in zip(uids, raw_labels)
        ]
        speakers = [
            speaker_name(s, self.layout, f"{where}, utterance {uid!r}")
            for uid, s in zip(uids, self._per_utterance("speakers", dialogue, n, where))
        ]
        sentences = (
            self._per_utterance("sentences", dialogue, n, where) if "sentences" in self.fields else [""] * n
        )
        features = {mod: self._modality(mod, dialogue, uids, where) for mod in self.modalities}
        return [
            Utterance(
                uid=uid,
                dialogue=str(dialogue),
                speaker=speakers[i],
                label=labels[i],
                features={
                    m: features[m][i : i + 1] for m in self.modalities
                },  # one node per modality: [1, dim]
                text=_as_text(sentences[i]),
            )
            for i, uid in enumerate(uids)
        ]

    def _per_utterance(self, name: str, dialogue: Any, n: int, where: str) -> list[Any]:
        """A non-feature field (ids, speakers, sentences) of one dialogue, checked to have ``n`` entries."""
        value = list(self.fields[name][dialogue])
        if len(value) != n:
            raise DataError(
                f"{where}: {name} has {len(value)} entries but the dialogue has {n} labelled utterances"
            )
        return value

    def _modality(self, mod: str, dialogue: Any, uids: Sequence[str], where: str) -> np.ndarray:
        """``[n_utterances, dim]`` features of ``mod`` for one dialogue."""
        mats = []
        for name in self.layout.modalities[mod]:
            mat = feature_rows(self.fields[name][dialogue], uids, name, where, self.widths.get(name))
            if len(mat):
                self.widths.setdefault(name, mat.shape[1])
            mats.append(mat)
        # Several fields (COSMIC's four RoBERTa layers) are averaged: the mean keeps one layer's scale.
        return np.mean(mats, axis=0, dtype=np.float32) if len(mats) > 1 else mats[0]
